"""The ACLs a production principal needs on a cluster with an authorizer: derived from the
settings (topic names, app id, enabled sinks), so that the README, ``refstream acls`` and the
secured-cluster tests use one list. refstream uses no transactions and no idempotent
producer, so it needs no transactional-id or cluster ACL.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from streams.settings import Settings

__all__ = ["Acl", "Operation", "Pattern", "Resource", "required_acls"]


class Resource(IntEnum):  # Kafka's AclResourceType codes
    TOPIC = 2
    GROUP = 3


class Pattern(IntEnum):  # PatternType codes
    LITERAL = 3
    PREFIXED = 4


class Operation(IntEnum):  # AclOperation codes
    READ = 3
    WRITE = 4
    CREATE = 5
    DESCRIBE = 8


READ = (Operation.READ, Operation.DESCRIBE)
READ_WRITE = (Operation.READ, Operation.WRITE, Operation.CREATE, Operation.DESCRIBE)


@dataclass(frozen=True)
class Acl:
    resource: Resource
    name: str
    pattern: Pattern
    operation: Operation

    def command(self, principal: str) -> str:
        """The ``kafka-acls.sh`` line that grants it."""
        kind = "topic" if self.resource is Resource.TOPIC else "group"
        return (
            f"kafka-acls.sh --bootstrap-server $BROKERS --command-config client.properties "
            f"--add --allow-principal {principal} --operation {self.operation.name.title()} "
            f"--{kind} '{self.name}' --resource-pattern-type {self.pattern.name.lower()}"
        )


def required_acls(settings: Settings) -> list[Acl]:
    """Every ACL a worker (and the ``refstream`` commands) of ``settings`` needs."""
    t = settings.topics
    grants: list[tuple[Resource, str, Pattern, tuple[Operation, ...]]] = [
        *(
            (Resource.TOPIC, name, Pattern.LITERAL, READ)
            for name in (t.referrals, t.signups, t.orders)
        ),
        *(
            (Resource.TOPIC, name, Pattern.LITERAL, READ_WRITE)
            for name in (
                t.attributions, t.dlq_invalid, t.by_referral, t.by_customer, t.by_email,
                t.by_advocate, t.by_order, t.advocate_totals,
            )
        ),
        (Resource.TOPIC, t.dlq_sink_prefix, Pattern.PREFIXED, READ_WRITE),
        # Faust's own topics: table changelogs and its leader topic, all "<app id>-…"
        (Resource.TOPIC, f"{settings.app_id}-", Pattern.PREFIXED, READ_WRITE),
        (Resource.GROUP, settings.app_id, Pattern.LITERAL, (Operation.READ,)),
        (Resource.GROUP, f"{settings.app_id}-ingest", Pattern.LITERAL, (Operation.READ,)),
        *(
            (Resource.GROUP, f"{settings.app_id}-sink-{sink}", Pattern.LITERAL, (Operation.READ,))
            for sink in settings.sinks
        ),
    ]  # fmt: skip
    return [
        Acl(resource, name, pattern, operation)
        for resource, name, pattern, operations in grants
        for operation in operations
    ]
