"""The multi-process layout of ``pixel-server serve --workers N``
(docs/architecture.md §8): the supervisor, the ingest workers, the storage
process's additions (sequencer, registry snapshots, the workers' board), the
hop between them, and one metrics exposition for all of them."""
