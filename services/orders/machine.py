"""One runner for the orders service's two state machines: the order's (`lifecycle`) and the
change request's (`changes/lifecycle.py`).

A machine is data — its states, its table of rows and what it records when a row fires — and
`Machine` runs it. Each lifecycle module declares its own states, facts, guards and table, binds
its row through a `Binding` subclass whose `state` property is that row's `state` column (the
only writer of it), and hands the rest to `Machine`:

- The `transitions` AsyncMachine is built once, at import, with `auto_transitions=False`; one
  trigger binds one row with `add_model(binding, initial=binding.state)` and removes it again
  in `finally`.
- Guards are `Guard`s: pure named checks over the binding's subjects and facts, returning None to
  pass or why they refuse. A trigger with several rows from one state takes the first row whose
  guards all pass.
- A row's effects run in order inside one callback (AsyncMachine would run a callback *list*
  concurrently, sharing the `AsyncSession`); after the row fired, the machine's `record`
  callback writes what it records (version, history, event) and the row is the trigger's answer.
- A trigger that did not fire raises what the machine's `refuse` makes of the first refusal in
  table order (`GuardFailed` unless the machine says otherwise). Whether the trigger is allowed
  at all is each machine's own check (`ensure_allowed`), made before it fires.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from transitions.extensions.asyncio import AsyncEventData, AsyncMachine

from shared.errors import GuardFailed

Effect = Callable[[AsyncEventData], Awaitable[None]]


def api_name(trigger: str) -> str:
    """The trigger as DESIGN.md and the endpoints spell it (`credit_recheck` → `credit-recheck`)."""
    return trigger.replace("_", "-")


@dataclass(frozen=True)
class Refusal:
    reason: str
    errors: list[dict[str, str]] | None = None  # field errors (the preliminary check only)


GuardCheck = Callable[..., "str | Refusal | None"]


@dataclass(frozen=True)
class Guard:
    """A named condition of a machine: `check` returns None to pass, or the reason it refuses.

    `check` takes the binding's subjects (the order; the change request and its order), then
    the facts.
    """

    name: str
    check: GuardCheck
    doc: str

    def __call__(self, event: AsyncEventData) -> bool:
        binding: Binding = event.model
        outcome = self.check(*binding.subjects, binding.facts)
        if outcome is None:
            return True
        binding.refusals[self.name] = outcome if isinstance(outcome, Refusal) else Refusal(outcome)
        return False


def guard(check: GuardCheck) -> Guard:
    return Guard(check.__name__, check, (check.__doc__ or "").strip())


class Row(Protocol):
    """What the runner reads of a table's row (each machine's `Row` has more, for `describe`)."""

    @property
    def trigger(self) -> str: ...
    @property
    def source(self) -> tuple[str, ...]: ...
    @property
    def dest(self) -> str | None: ...  # None: internal transition, the row stays in its state
    @property
    def guards(self) -> tuple[Guard, ...]: ...
    @property
    def effects(self) -> tuple[Effect, ...]: ...
    @property
    def conditions(self) -> list[Guard]: ...  # what the machine checks when the trigger fires


class Binding:
    """A row bound to a machine for one trigger; a subclass's `state` property is its column."""

    subjects: tuple[Any, ...]  # what the guards check, before the facts

    def __init__(self, facts: Any, effects: Any) -> None:
        self.facts = facts
        self.effects = effects
        self.refusals: dict[str, Refusal] = {}
        self.fired: Any = None

    state: str


Record = Callable[[Any, AsyncEventData], Awaitable[None]]
Refuse = Callable[[str, Refusal], Exception]


def guard_failed(name: str, refusal: Refusal) -> Exception:
    return GuardFailed(name, refusal.reason)


class _RowCallbacks:
    """One row's callbacks: its effects in order (before), then the machine's record (after)."""

    def __init__(self, r: Row, record: Record) -> None:
        self.row = r
        self.record = record

    async def before(self, event: AsyncEventData) -> None:
        for effect in self.row.effects:
            await effect(event)

    async def after(self, event: AsyncEventData) -> None:
        await self.record(self.row, event)
        event.model.fired = self.row


class Machine:
    """A table run by one `transitions` AsyncMachine, built once."""

    def __init__(self, *, name: str, states: Sequence[str], initial: str, table: Sequence[Row],
                 record: Record, refuse: Refuse = guard_failed) -> None:
        self.table = tuple(table)
        self.refuse = refuse
        self._machine = AsyncMachine(model=None, states=states, initial=initial,
                                     auto_transitions=False, send_event=True, name=name)
        for r in self.table:
            callbacks = _RowCallbacks(r, record)
            self._machine.add_transition(r.trigger, list(r.source), r.dest, conditions=r.conditions,
                                         before=[callbacks.before], after=[callbacks.after])

    @property
    def models(self) -> list[Any]:
        """The rows bound right now (none between triggers)."""
        return self._machine.models

    def allows(self, state: str, trigger: str) -> bool:
        """Whether the table has `trigger` from `state` (its guards aside)."""
        return trigger in self._machine.get_triggers(state)

    def allowed_triggers(self, state: str) -> list[str]:
        """The triggers the table allows from `state`, as the API names them, in table order."""
        triggers = set(self._machine.get_triggers(state))
        return list(dict.fromkeys(api_name(r.trigger) for r in self.table if r.trigger in triggers))

    def first_refusal(self, state: str, trigger: str,
                      refusals: dict[str, Refusal]) -> tuple[str, Refusal]:
        """The refusal of the first guard, in table order, that refused `trigger` from `state`."""
        for transition in self._machine.events[trigger].transitions[state]:
            for condition in transition.conditions:
                name = condition.func.name
                if name in refusals:
                    return name, refusals[name]
        if refusals:
            return next(iter(refusals.items()))
        return trigger, Refusal(f"{api_name(trigger)} did not fire.")

    async def fire(self, binding: Binding, trigger: str, **kwargs: Any) -> Any:
        """Fire `trigger` on the bound row; returns the table row that fired, or raises why not."""
        state = binding.state
        self._machine.add_model(binding, initial=state)
        try:
            fired = await binding.trigger(trigger, **kwargs)  # type: ignore[attr-defined]
        finally:
            self._machine.remove_model(binding)
        if not fired or binding.fired is None:
            raise self.refuse(*self.first_refusal(state, trigger, binding.refusals))
        return binding.fired

    def check(self, state: str, trigger: str, subjects: tuple[Any, ...], facts: Any) -> Any:
        """The row `trigger` would fire from `state` with these facts, its remote answers aside —
        or raise why it would not, as `fire` would. Nothing runs."""
        refusals: dict[str, Refusal] = {}
        for r in self.table:
            if r.trigger != trigger or state not in r.source:
                continue
            passed = True
            for g in r.guards:
                outcome = g.check(*subjects, facts)
                if outcome is not None:
                    refusals.setdefault(g.name, outcome if isinstance(outcome, Refusal)
                                        else Refusal(outcome))
                    passed = False
            if passed:
                return r
        raise self.refuse(*self.first_refusal(state, trigger, refusals))
