"""The simulated clinical review behind a case: deterministic for a given case input.

The same procedure, codes and notes always give the same summary, steps and outcome, so a user
can reproduce a review. All content is invented for ordo; no real patient or guideline text.
"""

from __future__ import annotations

import hashlib
import json
import random
from datetime import date, timedelta

from pydantic import BaseModel, model_serializer
from pydantic_core.core_schema import SerializerFunctionWrapHandler

PDF_NAME = "medical-record.pdf"


class Option(BaseModel):
    key: str
    text: str
    selected: bool


class LogicRule(BaseModel):
    text: str
    selected: bool


class Evidence(BaseModel):
    content: str
    page_number: int
    pdf_name: str
    event_datetime: str


class Step(BaseModel):
    """One question of the review. ``logic`` is absent (not null) on the routing question."""

    key: str
    question: str
    options: list[Option]
    logic: list[LogicRule] | None = None
    reasoning: str
    decision: str
    next_step: str
    is_met: bool
    is_final: bool
    evidence: list[Evidence]

    @model_serializer(mode="wrap")
    def _without_missing_logic(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        data: dict[str, object] = handler(self)
        if self.logic is None:
            data.pop("logic", None)
        return data


class Review(BaseModel):
    summary: str
    steps: list[Step]
    is_met: bool


_PATIENTS = ("Robin Vale", "Sam Okafor", "Jo Lindqvist", "Alex Moreau", "Kit Hadley", "Noor Azar")
_ONSETS = ("a fall at work", "lifting a heavy box", "a cycling accident", "no clear trigger")
_TREATMENTS = (
    "anti-inflammatory medication",
    "a supervised physiotherapy programme",
    "a home exercise plan",
    "activity modification",
    "a short course of muscle relaxants",
    "heat and ice therapy",
)
_IMAGING = (
    "mild degenerative changes without nerve compression",
    "no acute abnormality",
    "facet arthropathy at two adjacent levels",
    "a small disc bulge without canal stenosis",
)
_INDICATIONS = (
    "Pain has lasted longer than three months",
    "Pain is worse on extension and rotation",
    "Conservative care for at least six weeks has not helped enough",
    "No neurological deficit on examination",
)
_FINDINGS = (
    "Pain scores stayed between 6 and 8 out of 10 across three visits",
    "Range of motion limited on extension, with localised tenderness",
    "Straight leg raise negative on both sides",
    "Completed eight physiotherapy sessions with partial relief",
    "Sleep disturbed by pain most nights",
    "No red-flag symptoms reported",
)


def seed_of(procedure_name: str, cpt_codes: list[str], notes: str) -> int:
    digest = hashlib.sha256(json.dumps([procedure_name, cpt_codes, notes]).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def simulate_review(procedure_name: str, cpt_codes: list[str], notes: str) -> Review:
    rng = random.Random(seed_of(procedure_name, cpt_codes, notes))  # content, not security
    patient = rng.choice(_PATIENTS)
    months = rng.randint(2, 14)
    tried = rng.sample(_TREATMENTS, 3)
    imaging = rng.choice(_IMAGING)
    last_visit = date(2025, 1, 6) + timedelta(days=rng.randrange(600))
    diagnostic = rng.random() < 0.6
    indications = [index < 3 or rng.random() < 0.5 for index in range(4)]
    met = months >= 3 and all(indications[:3]) and rng.random() < 0.7

    def evidence(count: int) -> list[Evidence]:
        return [
            Evidence(
                content=rng.choice(_FINDINGS),
                page_number=rng.randint(1, 24),
                pdf_name=PDF_NAME,
                event_datetime=(last_visit - timedelta(days=rng.randrange(180))).isoformat()
                + "T00:00:00",
            )
            for _ in range(count)
        ]

    pathway = "Diagnostic" if diagnostic else "Therapeutic"
    summary = (
        f"{patient} reports {months} months of pain that began after {rng.choice(_ONSETS)}. "
        f"Records show {', '.join(tried[:2])} and {tried[2]} without lasting relief. "
        f"Imaging found {imaging}. The request is for {procedure_name.lower()} "
        f"({', '.join(cpt_codes) or 'no codes given'}), reviewed on the {pathway.lower()} "
        f"pathway. "
        + (
            "The documented history meets the criteria for this request."
            if met
            else "The documented history does not yet meet every criterion for this request; "
            "a further period of documented conservative care is the suggested next step."
        )
    )

    routing = Step(
        key="0",
        question="Which pathway does this request follow? Choose one and continue there.",
        options=[
            Option(key="10", text=f"Diagnostic {procedure_name.lower()}", selected=diagnostic),
            Option(key="20", text=f"Therapeutic {procedure_name.lower()}", selected=not diagnostic),
        ],
        reasoning=(
            f"The notes describe the request as part of a {pathway.lower()} plan. "
            f"No earlier {procedure_name.lower()} is recorded, so the {pathway.lower()} "
            "pathway applies."
        ),
        decision="10" if diagnostic else "20",
        next_step="10" if diagnostic else "20",
        is_met=True,
        is_final=False,
        evidence=evidence(rng.randint(2, 4)),
    )
    letters = "ABCD"
    first = rng.randrange(3)
    selection = Step(
        key="1",
        question="Which describes the main reason for the request?",
        options=[
            Option(key=letter, text=text, selected=index == first)
            for index, (letter, text) in enumerate(
                zip(
                    letters,
                    (
                        "Axial spine pain without radiating symptoms",
                        "Pain after a previous spinal procedure",
                        "Suspected joint-mediated pain from examination",
                        "None of the above",
                    ),
                    strict=True,
                )
            )
        ],
        logic=[
            LogicRule(text=f"If option {letter} is selected, go to question 2", selected=i == first)
            for i, letter in enumerate(letters[:3])
        ]
        + [LogicRule(text="If option D is selected, the request cannot proceed", selected=False)],
        reasoning=(
            f"The history points to option {letters[first]}: the examination and the "
            f"{months}-month course fit it best, and nothing suggests option D."
        ),
        decision=letters[first],
        next_step="2",
        is_met=True,
        is_final=False,
        evidence=evidence(rng.randint(1, 3)),
    )
    chosen = [letters[i] for i, ok in enumerate(indications[:3]) if ok]
    indications_step = Step(
        key="2",
        question="Which of these indications are documented?",
        options=[
            Option(key=letter, text=text, selected=indications[i])
            for i, (letter, text) in enumerate(zip(letters, _INDICATIONS, strict=True))
        ],
        logic=[
            LogicRule(
                text="If options A, B and C are all selected, go to question 3",
                selected=len(chosen) == 3,
            ),
            LogicRule(text="Otherwise the request cannot proceed", selected=len(chosen) < 3),
        ],
        reasoning=(
            f"The record documents {', '.join(chosen) or 'none of the indications'}. "
            f"Duration: {months} months; treatments tried: {', '.join(tried)}."
        ),
        decision=", ".join(letter for i, letter in enumerate(letters) if indications[i]),
        next_step="3" if len(chosen) == 3 else "FAILURE",
        is_met=len(chosen) == 3,
        is_final=len(chosen) < 3,
        evidence=evidence(1),
    )
    steps = [routing, selection, indications_step]
    if len(chosen) == 3:
        steps.append(
            Step(
                key="3",
                question="Has conservative care been tried and documented in the last year?",
                options=[
                    Option(key="A", text="Medication for at least four weeks", selected=True),
                    Option(key="B", text="Physical therapy or home exercise", selected=met),
                    Option(key="C", text="Activity modification", selected=True),
                    Option(key="D", text="No conservative care documented", selected=False),
                ],
                logic=[
                    LogicRule(
                        text="If options A, B and C are selected, the criteria are met",
                        selected=met,
                    ),
                    LogicRule(text="Otherwise the criteria are not met", selected=not met),
                ],
                reasoning=(
                    "Medication and activity changes are documented. "
                    + (
                        "A structured exercise programme is documented as well."
                        if met
                        else "No structured exercise programme is documented in the last year."
                    )
                ),
                decision="A, B, C" if met else "A, C",
                next_step="SUCCESS" if met else "FAILURE",
                is_met=met,
                is_final=True,
                evidence=evidence(rng.randint(1, 3)),
            )
        )
    return Review(summary=summary, steps=steps, is_met=met and len(chosen) == 3)
