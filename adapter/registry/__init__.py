"""The outside registries real-name binding reaches (adapter/ports_identity.py): the hospital's
SMS gateway and the electronic health card (电子健康卡) registry.

``http`` is the adapter's side: one small JSON-over-HTTP client per port, explicit timeouts.
Hospitals put their SMS platform and their province's health card platform behind that JSON
(one relay each, the shape is in docs/identity.md). ``sandbox`` is the development side: an
SMS inbox and a registry of made-up cards, served by the wallet sandbox program, so the adapter
reaches them over the network exactly as it reaches the real ones.
"""
