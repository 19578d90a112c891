"""The sweep's high-water mark, as the compacted zoho.sweep.marks topic keeps it."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class SweepMark(BaseModel):
    """Key `{source_id}:{module}`: the latest Modified_Time a sweep has read."""

    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = 1
    mark: datetime = Field(description="Latest Modified_Time read, in Zoho's clock.")
    updated_at: datetime
    seen: dict[str, datetime] = Field(
        default_factory=dict,
        description="Envelope ids published for records modified within the overlap before "
        "the mark, with their Modified_Time: the next sweep re-reads them and need not "
        "publish them again.",
    )
