"""Fault profiles: what the emulator gets wrong while the operations run, and whether the daemon
is killed. Every fault is switched off once the operations stop; the daemon must then converge
on its own."""

from __future__ import annotations

from dataclasses import dataclass

from syncd.emulator.faults import Faults


@dataclass(frozen=True)
class Profile:
    """One way the world misbehaves."""

    name: str
    faults: Faults
    about: str
    linger: float = 1.0  # seconds a deleted file stays in the listing
    crash: bool = False  # SIGKILL the daemon at random moments, operate while it is down
    folders: int = 1  # 2: the daemon also mirrors a neighbour folder, which must stay exact


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("none", Faults(), "no faults"),
        Profile("errors", Faults(error_rate=0.1), "10% of requests answered 500 or 529"),
        Profile("ratelimit", Faults(rate_limit_rpm=120, rate_limit_burst=2),
                "429 storms with retry-after: the service allows 2 requests/s, syncd's own "
                "pacing is set far above it"),
        Profile("drops", Faults(drop_upload_rate=0.2),
                "20% of uploads lose their connection mid-body (nothing stored)"),
        Profile("lost", Faults(lose_response_rate=0.2),
                "20% of uploads are stored, then the connection drops before the answer"),
        Profile("linger", Faults(), "deleted files stay in the listing for 20 s", linger=20.0),
        Profile("latency", Faults(latency_seconds=0.25), "every request waits 250 ms"),
        Profile("crash", Faults(latency_seconds=0.03),
                "SIGKILL during uploads, right after an upload was answered, during a journal "
                "commit, during a reconcile, or at a random moment; operations while down; "
                "restart", crash=True),
        Profile("chaos", Faults(error_rate=0.05, drop_upload_rate=0.05, lose_response_rate=0.05,
                                latency_seconds=0.02, rate_limit_rpm=1200, rate_limit_burst=8),
                "all faults at once, deletes linger 10 s, and the crash profile's kills",
                linger=10.0, crash=True),
        Profile("folders", Faults(error_rate=0.05, lose_response_rate=0.05, latency_seconds=0.02),
                "the folder shares its daemon and request budget with a neighbour folder (its "
                "own prefix and journal) that must stay exact; 5% errors and lost responses, "
                "and the crash profile's kills", crash=True, folders=2),
    )
}
