"""Alipay OpenAPI v1 (gateway.do): client, gateway (the WalletGateway port), notification
verification, RSA2 signing, constants and its configuration section."""
