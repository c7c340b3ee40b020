"""Transitions that need another service to act first, made crash-safe (DESIGN.md §9).

Settle needs ledger to issue the invoice and credit to convert the reservation; submit needs
credit's reservation; cancel and revise need credit to give it back (and ledger to credit a
prepaid invoice); a prepaid order's contract needs ledger's invoice; a return on an invoiced
order needs a credit note; applying a change request needs credit to adjust the reservation.
Each of these is a *step*, run in three parts:

1. **Intent.** Under the order's row lock the use case checks every local guard
   (`lifecycle.check`), fixes everything the remote calls will send — keys, amounts, issue
   time, due date — and stores it on the order as `pending_step`; then it commits
   (`shared.db.checkpoint`). From here on the step will finish: the order accepts no other
   change while it is pending (`StepInProgress`), and every attempt sends the same bodies.
2. **Calls.** With no transaction open (no lock across the network), the step calls credit or
   ledger under its fixed idempotency keys. No answer: the caller gets 503, the intent stays
   and is retried. A definitive refusal (4xx): the step is abandoned — it is only ever
   refused before it changed anything remote — and the caller gets the refusal.
3. **Finish.** Under the lock again, if the intent is still the same one, it is cleared and
   the trigger fires with the answers as facts (`invoice_issued`, …), in one transaction. If
   a keyed request began the step and another party finishes it, the first request's answer is
   stored for its key, so its retry replays it.

A crash at any point leaves either nothing (before 1) or the intent; the caller's retry (which
finds the intent and resumes it) or the recovery worker (`resume_due`, every few seconds, for
intents whose `step_due_at` has come) repeats 2 and 3, and credit and ledger answer the same
keys with the same results. Two parties finishing one step at once is harmless: the second
finds the intent gone and answers with what the first did.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.orders import lifecycle, repository
from services.orders.clients import CreditProfile
from services.orders.config import OrdersSettings
from services.orders.context import OrdersContext
from services.orders.credit_blocks import credit_block, holds_reservation, pending_block
from services.orders.lifecycle import Effects, Facts
from services.orders.models import Order, OrderReturn, OrderReturnLine
from services.orders.payloads import order_event
from services.orders.schemas import OrderPublic, ReturnPublic
from shared.clock import Clock
from shared.db import Database, checkpoint
from shared.errors import Conflict, DependencyUnavailable, GuardFailed, Problem
from shared.failpoints import failpoint
from shared.idempotency import KeyRef, StoredResponse, store_response
from shared.money import line_total
from shared.observability import current_request_id, reset_request_id, set_request_id

log = logging.getLogger("o2c.orders.steps")
SYSTEM_ACTOR = "system"  # who acts when no one asked (history's actor)


@dataclass
class Env:
    """Where a step runs: the session it commits through, the orders context (clients, outbox,
    clock, settings), who asked, and the key of the request running it (None for the recovery
    worker)."""

    session: AsyncSession
    ctx: OrdersContext
    actor: str
    request_key: KeyRef | None = None

    @classmethod
    def of(cls, ctx: OrdersContext, session: AsyncSession, actor: str, *,
           request_key: KeyRef | None = None) -> Env:
        """The environment of a step run through the orders app's context."""
        return cls(session=session, ctx=ctx, actor=actor, request_key=request_key)

    def effects(self, actor: str | None = None) -> Effects:
        return self.ctx.effects(self.session, actor or self.actor)


Call = Callable[[Env, dict[str, Any]], Awaitable[dict[str, Any]]]
Finish = Callable[[Env, Order, dict[str, Any], dict[str, Any]], Awaitable[Any]]
Current = Callable[[Env, Order, dict[str, Any]], Awaitable[Any]]
Render = Callable[[Any, Order], StoredResponse]


@dataclass(frozen=True)
class Kind:
    """One kind of step: its remote calls, its finish, and how its answer looks."""

    name: str
    service: str                 # who it waits for, as the 409 `StepInProgress` says
    call: Call                   # part 2: only from the stored args; returns the answers
    finish: Finish               # part 3: fire the trigger; returns what the endpoint answers
    current: Current             # what the endpoint answers once someone else finished it
    render: Render               # that answer as stored for an idempotency key


KINDS: dict[str, Kind] = {}  # the core's below; `changes/` registers `change_apply`


def kind(name: str, service: str, *, current: Current | None = None,
         render: Render | None = None) -> Callable[[Call], Call]:
    """Register `call` as the remote part of step `name`; its finish is registered with it."""
    def register(call: Call) -> Call:
        KINDS[name] = Kind(name, service, call, _finishes[name], current or _current_order,
                           render or _order_response)
        return call
    return register


_finishes: dict[str, Finish] = {}


def finishes(name: str) -> Callable[[Finish], Finish]:
    def register(finish: Finish) -> Finish:
        _finishes[name] = finish
        return finish
    return register


CancelHook = Callable[[Env, Order, str], Awaitable[None]]
_on_cancel: list[CancelHook] = []


def on_cancel(hook: CancelHook) -> CancelHook:
    """Register what else a cancel's finish does, in its transaction, after the order moved:
    `changes/` withdraws the order's open change requests (registered when `app.py` loads it)."""
    _on_cancel.append(hook)
    return hook


# --- Running a step -----------------------------------------------------------------------


def pending(order: Order, name: str) -> dict[str, Any] | None:
    """The order's pending step if it is of kind `name` (a retry resumes it), else None."""
    step = order.pending_step
    return step if step is not None and step.get("kind") == name else None


async def begin(env: Env, order: Order, name: str, args: dict[str, Any]) -> dict[str, Any]:
    """Part 1: record the intent on the locked order and commit it."""
    now = env.ctx.clock.now()
    step = {"id": str(uuid.uuid4()), "kind": name, "service": KINDS[name].service, "args": args,
            "started_at": now.isoformat(), "actor": env.actor, "request_id": current_request_id(),
            "key": env.request_key.as_dict() if env.request_key else None,
            "attempts": 0, "last_error": None}
    order.pending_step = step
    order.step_due_at = now + timedelta(seconds=env.ctx.settings.step_grace_seconds)
    await env.session.flush()
    await checkpoint(env.session)
    failpoint(f"orders.{name}.after_intent")
    return step


async def run(env: Env, order_id: str, step: dict[str, Any]) -> Any:
    """Parts 2 and 3 of a recorded step; returns what the endpoint answers."""
    k = KINDS[step["kind"]]
    await checkpoint(env.session)  # whatever the caller read, no transaction stays open
    try:
        answers = await k.call(env, step["args"])
    except DependencyUnavailable as exc:
        await _postpone(env, order_id, step, exc.detail)
        raise DependencyUnavailable(
            f"{exc.detail} The {k.name.replace('_', '-')} is recorded and finishes on its own "
            f"once {k.service} answers; a retry with the same Idempotency-Key answers with it.",
            dependency=exc.extra.get("dependency"), step=k.name.replace("_", "-"),
            headers={"Retry-After": "5"}) from exc
    except Problem as refusal:
        await _abandon(env, order_id, step, refusal)
        raise
    failpoint(f"orders.{k.name}.after_remote")
    order = await repository.lock_order(env.session, order_id)
    if order is None or (order.pending_step or {}).get("id") != step["id"]:
        log.info("step %s of order %s was finished by someone else", k.name, order_id)
        assert order is not None
        return await k.current(env, order, step["args"])
    order.pending_step = None
    order.step_due_at = None
    result = await k.finish(env, order, step["args"], answers)
    await _answer_for_beginner(env, step, k, result, order)
    return result


async def finish_now(env: Env, order: Order, name: str, args: dict[str, Any],
                     answers: dict[str, Any]) -> Any:
    """Finish a step whose remote part has nothing to do, in the caller's transaction."""
    return await KINDS[name].finish(env, order, args, answers)


async def _postpone(env: Env, order_id: str, step: dict[str, Any], error: str) -> None:
    """No answer: keep the intent, note the attempt, and say when the worker tries again."""
    order = await repository.lock_order(env.session, order_id)
    if order is not None and (order.pending_step or {}).get("id") == step["id"]:
        attempts = int(step.get("attempts") or 0) + 1
        order.pending_step = {**step, "attempts": attempts, "last_error": error[:500]}
        delay = min(env.ctx.settings.step_backoff_max_seconds, 2.0 ** min(attempts, 10))
        order.step_due_at = env.ctx.clock.now() + timedelta(seconds=delay)
        await env.session.flush()
    await checkpoint(env.session)
    # shared.http already said, in one WARNING line, why the call failed
    log.info("%s of order %s waits for %s: %s", step["kind"], order_id, step["service"], error)


async def _abandon(env: Env, order_id: str, step: dict[str, Any], refusal: Problem) -> None:
    """A definitive refusal of the remote side: nothing was changed there; drop the intent."""
    order = await repository.lock_order(env.session, order_id)
    if order is not None and (order.pending_step or {}).get("id") == step["id"]:
        order.pending_step = None
        order.step_due_at = None
        await env.session.flush()
    await checkpoint(env.session)
    log.warning("%s of order %s refused by %s: %s", step["kind"], order_id, step["service"],
                refusal.detail)


async def _answer_for_beginner(env: Env, step: dict[str, Any], k: Kind, result: Any,
                               order: Order) -> None:
    """The request that began the step gets this answer on its retry (if it was keyed and is
    not the one finishing: that one's answer is stored by shared.idempotency)."""
    if not step.get("key"):
        return
    ref = KeyRef.from_dict(step["key"])
    if env.request_key is not None and env.request_key == ref:
        return
    await env.session.flush()
    await store_response(env.session, env.ctx.keys, ref, k.render(result, order), now=env.ctx.clock.now(),
                         ttl_hours=env.ctx.settings.idempotency_ttl_hours)


def json_headers(etag: int, location: str | None = None) -> list[tuple[str, str]]:
    """The headers of a step's answer as stored for an idempotency key."""
    headers = [("content-type", "application/json"), ("etag", f'"{etag}"')]
    if location:
        headers.append(("location", location))
    return headers


def _order_response(order: Order, _: Order) -> StoredResponse:
    return StoredResponse(200, json_headers(order.version),
                          OrderPublic.model_validate(order).model_dump_json().encode())


async def _current_order(env: Env, order: Order, args: dict[str, Any]) -> Order:
    return await lifecycle.after_transition(env.session, order)


# --- The recovery worker ------------------------------------------------------------------


async def resume_due(*, db: Database, env_for: Callable[[AsyncSession, str], Env],
                     clock: Clock, settings: OrdersSettings, limit: int = 50) -> int:
    """Finish every step whose time has come (a request died, or a dependency was down);
    returns how many finished. Each order is claimed (`step_due_at` moved a lease ahead) so a
    second replica leaves it alone; a step still waiting is postponed by `run`."""
    async with db.session(read_only=True) as session:
        due = await repository.orders_with_due_steps(session, now=clock.now(), limit=limit)
    finished = 0
    for order_id in due:
        async with db.session() as session:
            order = await repository.lock_order(session, order_id, skip_locked=True)
            now = clock.now()
            if order is None or order.pending_step is None or order.step_due_at is None \
                    or order.step_due_at > now:
                continue
            step = order.pending_step
            order.step_due_at = now + timedelta(seconds=settings.step_lease_seconds)
            await session.commit()
            token = set_request_id(step.get("request_id") or current_request_id())
            try:
                await run(env_for(session, step.get("actor") or "system"), order_id, step)
                await session.commit()
                finished += 1
            except DependencyUnavailable:
                pass  # postponed and logged by `run`
            except Problem as refusal:
                log.warning("recovery of %s on order %s ended: %s", step["kind"], order_id,
                            refusal.detail)
            finally:
                reset_request_id(token)
    return finished


# --- The kinds ----------------------------------------------------------------------------


def reservation_request(order: Order) -> dict[str, Any]:
    """What credit is asked to reserve for the order (its current total)."""
    return {"customer_id": order.customer_id, "order_id": order.id,
            "amount_minor": order.total_minor, "currency": order.currency}


async def _release(env: Env, credit: dict[str, Any], reservation: dict[str, Any]) -> dict[str, Any]:
    """Give back what credit holds for the order; the credit block afterwards.

    A reservation asked for but never answered may exist: ask again with the same key (credit
    replays its decision, never reserves twice) to learn it, then release it.
    """
    credit = dict(credit)
    if credit.get("status") == "pending" and credit.get("request_key"):
        answer = await env.ctx.credit.reserve(**reservation, idempotency_key=credit["request_key"])
        credit = credit_block(answer)
    if holds_reservation(credit):
        await env.ctx.credit.release(credit["reservation_id"])
        credit = {**credit, "status": "released"}
    return {k: v for k, v in credit.items() if k != "request_key"}


def needs_release(credit: dict[str, Any]) -> bool:
    return holds_reservation(credit) or (
        credit.get("status") == "pending" and bool(credit.get("request_key")))


# submit: credit reserves the order's total.

@finishes("submit")
async def _finish_submit(env: Env, order: Order, args: dict[str, Any],
                         answers: dict[str, Any]) -> Order:
    await lifecycle.fire(order, "submit", facts=submit_facts(env.ctx.settings, args, answers["credit"]),
                         effects=env.effects())
    return await lifecycle.after_transition(env.session, order)


def submit_facts(settings: OrdersSettings, args: dict[str, Any],
                 credit: dict[str, Any] | None) -> Facts:
    """Submit's facts as fixed at its first attempt (today, credit's profile), plus credit's answer."""
    profile = CreditProfile.model_validate(args["profile"]) if args.get("profile") else None
    return Facts(today=date.fromisoformat(args["today"]), profile=profile,
                 customer_known=profile is not None,
                 required_departments=tuple(settings.review_departments), credit=credit)


@kind("submit", "credit")
async def _call_submit(env: Env, args: dict[str, Any]) -> dict[str, Any]:
    try:
        answer = await env.ctx.credit.reserve(**args["reservation"], idempotency_key=args["key"])
    except DependencyUnavailable:
        log.warning("credit did not answer the reservation of order %s; it stays pending",
                    args["reservation"]["order_id"])
        return {"credit": pending_block(args["key"])}
    return {"credit": credit_block(answer)}


# credit-recheck: credit decides the reservation again.

@finishes("credit_recheck")
async def _finish_recheck(env: Env, order: Order, args: dict[str, Any],
                          answers: dict[str, Any]) -> Order:
    facts = Facts(required_departments=tuple(env.ctx.settings.review_departments),
                  opinions=await lifecycle.opinions(env.session, order), credit=answers["credit"])
    await lifecycle.fire(order, "credit_recheck", facts=facts, effects=env.effects())
    return await lifecycle.after_transition(env.session, order)


@kind("credit_recheck", "credit")
async def _call_recheck(env: Env, args: dict[str, Any]) -> dict[str, Any]:
    answer = await env.ctx.credit.reserve(**args["reservation"], idempotency_key=args["key"])
    return {"credit": credit_block(answer)}


# revise: credit gives the reservation back.

@finishes("revise")
async def _finish_revise(env: Env, order: Order, args: dict[str, Any],
                         answers: dict[str, Any]) -> Order:
    await lifecycle.fire(order, "revise", facts=Facts(credit=answers["credit"]),
                         reason=args.get("reason"), effects=env.effects())
    return await lifecycle.after_transition(env.session, order)


@kind("revise", "credit")
async def _call_revise(env: Env, args: dict[str, Any]) -> dict[str, Any]:
    return {"credit": await _release(env, args["credit"], args["reservation"])}


# cancel: ledger credits a prepaid order's invoice, credit gives the reservation back.

def cancel_facts(args: dict[str, Any], credit: dict[str, Any] | None) -> Facts:
    balance = args.get("balance") or {}
    return Facts(invoice_paid_minor=balance.get("paid_minor"),
                 outstanding_minor=balance.get("outstanding_minor"), credit=credit)


@finishes("cancel")
async def _finish_cancel(env: Env, order: Order, args: dict[str, Any],
                         answers: dict[str, Any]) -> Order:
    await lifecycle.fire(order, "cancel", facts=cancel_facts(args, answers["credit"]),
                         reason=args["reason"], effects=env.effects())
    for hook in _on_cancel:
        await hook(env, order, args["reason"])
    return await lifecycle.after_transition(env.session, order)


@kind("cancel", "ledger and credit")
async def _call_cancel(env: Env, args: dict[str, Any]) -> dict[str, Any]:
    note = args.get("credit_note")
    if note:
        await env.ctx.ledger.credit_note(**note)
    return {"credit": await _release(env, args["credit"], args["reservation"])}


# sign-contract of a prepaid order: ledger issues the invoice, due the day it was signed.

@finishes("sign_contract")
async def _finish_contract(env: Env, order: Order, args: dict[str, Any],
                           answers: dict[str, Any]) -> Order:
    await lifecycle.fire(order, "sign_contract", facts=Facts(invoice_id=answers.get("invoice_id")),
                         contract_number=args["contract_number"],
                         signed_at=datetime.fromisoformat(args["signed_at"]), effects=env.effects())
    return await lifecycle.after_transition(env.session, order)


@kind("sign_contract", "ledger")
async def _call_contract(env: Env, args: dict[str, Any]) -> dict[str, Any]:
    invoice = await env.ctx.ledger.issue_invoice(**invoice_request(args["invoice"]))
    return {"invoice_id": invoice.id}


def invoice_body(order: Order, *, amount_minor: int, issued_at: datetime,
                 due_date: date) -> dict[str, Any]:
    """The invoice ledger is asked for, as stored in the step (JSON)."""
    return {"order_id": order.id, "customer_id": order.customer_id,
            "salesperson_id": order.salesperson_id, "currency": order.currency,
            "amount_minor": amount_minor, "issued_at": issued_at.isoformat(),
            "due_date": due_date.isoformat()}


def invoice_request(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "issued_at": datetime.fromisoformat(body["issued_at"]),
            "due_date": date.fromisoformat(body["due_date"])}


# settle: ledger issues the invoice, credit converts the reservation.

@finishes("settle")
async def _finish_settle(env: Env, order: Order, args: dict[str, Any],
                         answers: dict[str, Any]) -> Order:
    open_changes = await repository.open_change_request_numbers(env.session, order.id)
    facts = Facts(open_change_requests=open_changes, invoice_id=answers.get("invoice_id"),
                  reservation_converted=answers.get("converted", False))
    await lifecycle.fire(order, "settle", facts=facts, due_date=date.fromisoformat(args["due_date"]),
                         effects=env.effects())
    if answers.get("outstanding_minor") == 0:  # paid already (a prepaid order, or paid meanwhile)
        await _close_paid(env, order, open_changes)
    return await lifecycle.after_transition(env.session, order)


async def _close_paid(env: Env, order: Order, open_changes: list[str]) -> None:
    """An order paid before it was invoiced closes with its settlement (`invoice.paid` came
    while there was nothing to close); an open exception keeps it invoiced."""
    facts = Facts(outstanding_minor=0, open_change_requests=open_changes,
                  open_exceptions=await repository.count_open_exceptions(env.session, order.id))
    try:
        await lifecycle.fire(order, "close", facts=facts, reason="paid before settlement",
                             effects=env.effects(SYSTEM_ACTOR))
    except GuardFailed as refused:
        log.info("order %s stays invoiced: %s", order.id, refused.detail)


@kind("settle", "ledger and credit")
async def _call_settle(env: Env, args: dict[str, Any]) -> dict[str, Any]:
    invoice_id = args.get("invoice_id")
    if invoice_id is None:
        invoice_id = (await env.ctx.ledger.issue_invoice(**invoice_request(args["invoice"]))).id
    failpoint("orders.settle.after_invoice")
    converted = False
    if args.get("reservation_id"):
        await env.ctx.credit.convert(args["reservation_id"], invoice_id=invoice_id)
        converted = True
    balance = await env.ctx.ledger.order_balance(args["order_id"])
    return {"invoice_id": invoice_id, "converted": converted,
            "outstanding_minor": balance.outstanding_minor if balance is not None else None}


# return on an invoiced order: ledger credits the returned goods' value.

def return_lines(order: Order, lines: list[list[str]]) -> list[tuple[Any, Decimal]]:
    by_id = {line.id: line for line in order.lines}
    return [(by_id[line_id], Decimal(quantity)) for line_id, quantity in lines]


async def keep_return(env: Env, order: Order, *, return_id: str, reason: str,
                      lines: list[tuple[Any, Decimal]], credit_note_id: str | None) -> OrderReturn:
    """The return as recorded: its lines, the returned quantities, version + 1, its event."""
    amount = sum(line_total(q, line.unit_price_minor) for line, q in lines)
    now = env.ctx.clock.now()
    record = OrderReturn(id=return_id, order_id=order.id, reason=reason, amount_minor=amount,
                         credit_note_id=credit_note_id, recorded_by=env.actor, recorded_at=now,
                         lines=[OrderReturnLine(line_id=line.id, quantity=q) for line, q in lines])
    env.session.add(record)
    for line, q in lines:
        line.returned_quantity += q
    order.version += 1
    order.updated_at = now
    await env.session.flush()
    await env.ctx.outbox.enqueue(env.session, order_event(
        env.ctx.clock, "order.returned", order, return_id=return_id, amount_minor=amount,
        credit_note_id=credit_note_id, reason=reason, state=order.state))
    return record


@finishes("return")
async def _finish_return(env: Env, order: Order, args: dict[str, Any],
                         answers: dict[str, Any]) -> OrderReturn:
    return await keep_return(env, order, return_id=args["return_id"], reason=args["reason"],
                             lines=return_lines(order, args["lines"]),
                             credit_note_id=answers["credit_note_id"])


async def _current_return(env: Env, order: Order, args: dict[str, Any]) -> OrderReturn:
    record = await repository.get_return(env.session, args["return_id"])
    if record is None:  # abandoned, not finished: nothing was returned
        raise Conflict(f"The return on order {order.number} was not recorded; send it again.")
    return record


def _return_response(record: OrderReturn, order: Order) -> StoredResponse:
    return StoredResponse(201, json_headers(order.version,
                                             f"/v1/orders/{order.id}/returns/{record.id}"),
                          ReturnPublic.model_validate(record).model_dump_json().encode())


@kind("return", "ledger", current=_current_return, render=_return_response)
async def _call_return(env: Env, args: dict[str, Any]) -> dict[str, Any]:
    return {"credit_note_id": await env.ctx.ledger.credit_note(**args["credit_note"])}
