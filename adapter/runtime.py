"""The objects every role shares: configuration, database, mappings and HL7 profile."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property

from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from adapter.config import Config
from adapter.db import make_engine, make_session_factory
from adapter.his.profile import Hl7Profile, load_profile
from adapter.mappings import Mappings, load_mappings

logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Built once per process from a validated Config; roles take what they need from it."""

    config: Config
    engine: Engine
    session_factory: sessionmaker
    mappings: Mappings
    profile: Hl7Profile

    @classmethod
    def from_config(cls, config: Config) -> Runtime:
        """Open the database and load (and validate) the mappings and HL7 profile."""
        engine = make_engine(config.effective_database_url)
        return cls(
            config=config,
            engine=engine,
            session_factory=make_session_factory(engine),
            mappings=load_mappings(config.mappings_dir),
            profile=load_profile(config.mappings_dir / "hl7_profile.toml"),
        )

    @cached_property
    def document_types_by_hl7(self) -> dict[str, str]:
        """PID-3.5 identifier type code -> document type code."""
        return {d.hl7_type: d.code for d in self.mappings.document_types.values()}
