"""An example job kind, written as the README's "Add your own job kind" describes: count the
words of a text. One module; registering it is one line (``registry.register(WORD_COUNT)``)."""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ordo.kinds import JobFailed, Kind, RunContext


class WordCountPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["word_count"] = "word_count"
    text: str = Field(max_length=10_000)


def count_words(payload: WordCountPayload, ctx: RunContext) -> str:
    if not payload.text.strip():
        raise JobFailed("there are no words to count")
    ctx.sleep(1.0)  # simulated work: ORDO_TIME_SCALE applies
    ctx.report(50)
    return json.dumps({"words": len(payload.text.split())})


WORD_COUNT: Kind[WordCountPayload] = Kind(
    name="word_count",
    payload=WordCountPayload,
    run=count_words,
    max_seconds=3,
    result_is_json=True,
    description="Count the words of a text (1 s).",
)
