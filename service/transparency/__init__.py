"""The transparency log: every sequenced event is a leaf of an RFC 9162 Merkle tree whose
checkpoints (C2SP tlog-checkpoint) the service signs and regional associations cosign.

Sits above ``events`` (it listens to every emit, in the emitting transaction) and below
``registry`` and ``snapshot``, which put the log's size and checkpoint into credentials and
snapshots. Modules: ``merkle`` (pure tree math), ``leaves`` (what a leaf is), ``notes``
(C2SP formats), ``signer`` (the log key), ``log`` (appending, reading nodes), ``witnesses``,
``service`` (checkpoints, proofs, leaves), ``router``.
"""
