"""One worker of a replica reads the database-backed figures; another takes over when it stops."""

from __future__ import annotations

from image_sidecar.metrics import ReplicaReader


def test_one_reader_per_replica_and_another_takes_over(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    first, second = ReplicaReader(), ReplicaReader()
    assert first.holds()
    assert not second.holds()
    assert first.holds()  # it keeps the lock from one refresh to the next
    first.release()  # its worker stopped (or died: the kernel frees the lock alike)
    assert second.holds()


def test_a_single_process_always_reads(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    assert ReplicaReader().holds()
    assert ReplicaReader().holds()
