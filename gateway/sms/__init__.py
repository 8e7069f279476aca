"""Outbound SMS: what a provider promises, the providers, and the dispatcher that drains the outbox.

- ``provider.py``: the contract, :class:`SmsProvider` and the :class:`SendResult` it answers.
- ``log.py``: the development provider (the outbox's sent rows are the inbox).
- ``africastalking.py``: Africa's Talking's (or a compatible aggregator's) HTTP send API.
- ``pacer.py``: at most so many sends a second.
- ``dispatcher.py``: claims due outbox rows with a lease, sends them, records the outcome.
- ``factory.py``: the provider that ``OKRYU_SMS_PROVIDER`` names (``gateway.smpp`` for SMPP).

The dispatcher never composes text: bodies come from the outbox rows, written in the same
transaction as the order they announce. Nothing is imported here, so importing one module
of the package (``gateway.smpp`` imports ``provider.py``) loads no other.
"""
