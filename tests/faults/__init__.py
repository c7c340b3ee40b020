"""Fault injection: the four services as real processes on real databases, killed on purpose.

`make test-faults` runs this package (marker `faults`, left out of `make test`) on SQLite and
on PostgreSQL; `O2C_FAULTS_BOUNDED=1` is the small form CI runs. It checks DESIGN.md §9
against processes that are SIGKILLed at seeded random moments or at named failpoints.

Modules:
- `harness`    processes, ports, databases (SQLite files or throwaway PostgreSQL databases),
               keys, SIGKILL/outage/restart by pid, the failpoint table, sizes, a webhook sink;
- `driver`     concurrent, state-driven, retry-safe order flows over httpx, and the record of
               every answer (anomalies: 500s, 409 on a same-key retry, key reuse, …);
- `invariants` what must hold after recovery, polled until it does or a deadline passes;
- `scenario`   one run: cluster + sink + driver + fault + verdict, printing the figures.

Scenarios (each once per database):
- `test_service_kills`       (a) each service killed at a random moment during N flows, down D s;
- `test_settle_storm`        (b) orders killed while M delivered orders are settled at once;
- `test_same_key_retries`    (c) a POST re-sent with its key right after its 201 is a replay;
- `test_idempotency_crashes` (d) ledger killed at each idempotency failpoint (kill@K), keys retried;
- `test_failpoints`          (e) each failpoint of the table armed during the flows that reach it.

Invariants after recovery: every order closed (cancelled on the cancel route); one invoice per
order; one payment per payment key; trial balance debit = credit; every outbox row in
notifier's event log; every order/invoice event delivered to the sink with a valid signature;
credit holds no reservation or receivable for a finished order; no 500 (driver or logs).

Sizes (full form by default; `O2C_FAULTS_<FIELD>` overrides one, see `harness.Sizes`):
N=50 flows, D=60 s, M=30 settles, 1,000 retries, 500 payments per idempotency failpoint
(1,000 in all; ledger killed at hits 1, 7, 23, 51, 88), every failpoint (16 flows each),
recovery within 180 s, the services' own leases and timers; bounded (`O2C_FAULTS_BOUNDED=1`):
N=8, D=3 s, M=8, 100 retries, 50 payments (hits 3 and 17), two failpoints (6 flows), recovery
within 75 s, outbox and delivery leases of 5 s (so rows claimed by a killed process return in
seconds) and orders' step recovery every 1 s (grace 2 s, backoff at most 5 s).
`O2C_FAULTS_SEED` changes the seed (printed); `O2C_FAULTS_PG_SERVER` names the PostgreSQL
server (the Makefile passes `PG_SERVER`).

Run one:  .venv/bin/python -m pytest -m faults -rA tests/faults/test_settle_storm.py -k sqlite
Logs: every service's output goes to `<tmp_path>/cluster<n>/<service>.log` (kept by pytest;
the tail is printed when a test fails); the figures of each run are printed (`-rA`).
"""
