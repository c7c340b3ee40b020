"""Change requests (issue 6): a change of an approved order's terms, reviewed by the order's
departments and applied with the signed change agreement as the order's next revision.

`plan.py` checks a change set against an order; `lifecycle.py` is the change-request machine;
`service.py` holds the use cases and the steps they take part in; `api.py` the routes. The
orders core never imports this package: `app.py` puts it together with the core.
"""
