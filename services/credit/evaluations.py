"""Evaluations: score a customer with the scorecard (scorecard.py) from the financials, the
inquiry record, assets and ledger's payment history; apply one to make it the credit profile."""

from __future__ import annotations

from dataclasses import asdict

from sqlalchemy.ext.asyncio import AsyncSession

from services.credit import profiles, repository, scorecard
from services.credit.clients import LedgerClient
from services.credit.errors import EvaluationAlreadyApplied, EvaluationNotFound
from services.credit.models import CreditProfile, Customer, Evaluation
from services.credit.schemas import EvaluationCreate
from shared.auth import Principal
from shared.clock import Clock
from shared.outbox import Outbox


async def evaluate(*, session: AsyncSession, clock: Clock, principal: Principal, customer: Customer,
                   data: EvaluationCreate, ledger: LedgerClient) -> Evaluation:
    """Score the customer from the financials, the inquiry record, assets and payment history.

    Ledger is asked before the session's first statement (`customer` must come from a read
    session): on SQLite that statement takes the write lock, which must not be held across a
    call to another service (DESIGN.md §9).
    """
    fin = data.financials
    answer = await ledger.payment_history(customer.id, fin.currency)
    financials = scorecard.Financials(**fin.model_dump())
    if data.inquiry is not None:
        inquiry: scorecard.InquiryRecord | None = scorecard.InquiryRecord(
            **data.inquiry.model_dump(), source="given with the evaluation")
    else:
        on_file = await repository.latest_inquiry(session, customer.id)
        inquiry = None if on_file is None else scorecard.InquiryRecord(
            defaults_count=on_file.defaults_count, lawsuits_count=on_file.lawsuits_count,
            rating=on_file.rating, source=f"{on_file.source} {on_file.reference}, "
                                          f"{on_file.inquired_on.isoformat()}")
    total, pledged, count = await repository.asset_totals(session, customer.id, fin.currency)
    assets = scorecard.AssetFacts(total, pledged, count)
    card = scorecard.evaluate(financials, inquiry, assets, answer.history,
                              history_unavailable_because=answer.unavailable_because)
    evaluation = Evaluation(
        customer_id=customer.id,
        inputs={"financials": fin.model_dump(mode="json"),
                "inquiry": None if inquiry is None else asdict(inquiry),
                "assets": asdict(assets),
                "payment_history": None if answer.history is None else asdict(answer.history),
                "payment_history_note": answer.unavailable_because or None,
                "limit_basis": card.limit_basis},
        factors=card.factors_json(), score=card.score, grade=card.grade, currency=card.currency,
        recommended_limit_minor=card.recommended_limit_minor,
        recommended_terms_days=card.recommended_terms_days,
        recommended_policy=card.recommended_policy, created_by=principal.name,
        created_at=clock.now())
    session.add(evaluation)
    await session.flush()
    return evaluation


async def get_evaluation(session: AsyncSession, customer: Customer, evaluation_id: str,
                         *, for_update: bool = False) -> Evaluation:
    evaluation = await repository.get_evaluation(session, evaluation_id, for_update=for_update)
    if evaluation is None or evaluation.customer_id != customer.id:
        raise EvaluationNotFound(evaluation_id)
    return evaluation


async def apply_evaluation(*, session: AsyncSession, outbox: Outbox, clock: Clock,
                           default_currency: str, principal: Principal, customer: Customer,
                           evaluation_id: str) -> tuple[Evaluation, CreditProfile]:
    """Make an evaluation the profile: limit, currency, terms, grade and policy; applied once."""
    await get_evaluation(session, customer, evaluation_id)
    profile = await profiles.lock_profile(session, clock, default_currency, customer.id)
    evaluation = await get_evaluation(session, customer, evaluation_id, for_update=True)
    if evaluation.applied_at is not None:
        raise EvaluationAlreadyApplied(evaluation.id, evaluation.applied_at.isoformat())
    profile = await profiles.change_terms(
        session, outbox, clock, principal, profile, {
            "limit_minor": evaluation.recommended_limit_minor, "currency": evaluation.currency,
            "terms_days": evaluation.recommended_terms_days, "grade": evaluation.grade,
            "policy": evaluation.recommended_policy, "evaluation_id": evaluation.id},
        f"evaluation {evaluation.id} applied: score {evaluation.score}, grade {evaluation.grade}",
        evaluation_id=evaluation.id)
    evaluation.applied_by, evaluation.applied_at = principal.name, clock.now()
    await session.flush()
    return evaluation, profile
