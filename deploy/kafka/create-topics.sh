#!/usr/bin/env bash
# Topics the workers read or write but do not create themselves (contract section 3).
# Faust creates its internal topics (re-keyed join stages, changelogs) on start.
set -euo pipefail
for topic in referrals signups orders attributions refstream-advocate-totals refstream-dlq-invalid \
             refstream-dlq-crm refstream-dlq-email refstream-dlq-analytics refstream-dlq-gateway; do
  /opt/kafka/bin/kafka-topics.sh --bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS" \
    --create --if-not-exists --topic "$topic" --partitions "$PARTITIONS" --replication-factor 1
done
/opt/kafka/bin/kafka-topics.sh --bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS" --list
