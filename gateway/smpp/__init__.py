"""SMPP 3.4: one long-lived transceiver bind to an SMSC: sends, receipts, USSD and MO SMS.

- ``codec.py``: PDUs and their fields (an annotated submit_sm at its top), text into parts.
- ``link.py``: one connection (requests matched to responses), and the bind kept up over it:
  bind_transceiver, enquire_link, reconnect with backoff.
- ``provider.py``: :class:`SmppProvider`, the outbox's provider: submit_sm per part,
  throttling pauses, split messages resumed where they stopped.
- ``receipts.py``: delivery receipts read from deliver_sm and recorded in the outbox.
- ``ussd.py``: the ``smpp`` channel: USSD dialogues from an operator's USSD centre over the
  same kind of bind (or the very same one), and SMS that subscribers send through it.

The SMSC simulator (``simulators/smsc.py``) decodes PDUs on its own, sharing no code with
this package: each checks the other.

Why this library
----------------
None: a small hand-written codec over asyncio streams, after trying the three candidates
against what the outbox needs (a send that awaits the SMSC's verdict, exact GSM-7/UCS-2
segmentation, a configurable keep-alive, receipts). ``aiosmpplib`` 0.7.4 (asyncio) queues
messages in a broker and reports outcomes through hooks, so every send must be matched to its
response by hand; worse, its UDH splitter counts characters rather than septets and looks for
an ESC character that a Python string never holds: ``"€" * 100`` (200 septets) goes out as a
single 200-septet part, and a € at position 153 makes a 154-septet part. ``smpplib`` 2.2.4 is
synchronous (a thread beside the event loop) and its splitter cuts between ESC and the
character it escapes (``"a" * 152 + "€"`` gives a first part ending in 0x1B; its own source
has a FIXME saying so). ``smpp34`` 1.5.0 (Rust core) worked for the basics in a trial: a
transceiver bind, raw UDH + UCS-2 payloads, ESME_RTHROTTLED as a status, deliver_sm with
TLVs, a ``Disconnected`` event on a dropped socket. But its Python client fixes the
enquire_link interval and the response timeout at 30 s (measured; the constructor takes
neither), reports a response timeout as ESME_RSYSERR, a ``Client`` connects once only,
and its Python server can neither check a password nor drop a connection on demand, so the
test SMSC needed its own PDU handling anyway. That left a native dependency covering only the
easy part, and the codec, about 150 lines, is what the SMPP 3.4 spec lays out field by field.

Delivery is at least once, as for every provider: an SMSC that accepts a part but whose answer
is lost with the connection gets that part again on the retry. A message split into parts is
resumed, not restarted: when part 2 of 3 fails, the retry sends parts 2 and 3 with the same
concatenation reference, so the handset still sees one message. Every part asks for a
receipt, and every part's id goes back to the outbox with the outcome of the send, failed
or not, so each receipt finds its message (``outbox_receipts``).
"""
