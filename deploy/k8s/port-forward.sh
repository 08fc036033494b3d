#!/usr/bin/env bash
# Forward the services and backends of namespace obsconf to the localhost ports that
# targets/k8s.yaml names, until Ctrl-C. If one forward ends (its pod was replaced), every
# forward is stopped and the script exits non-zero: run it again.
#   deploy/k8s/port-forward.sh            # NAMESPACE=obsconf, KUBECTL=kubectl by default
set -euo pipefail

NAMESPACE="${NAMESPACE:-obsconf}"
KUBECTL="${KUBECTL:-kubectl}"

# resource local:remote (remote = the Service port)
FORWARDS=(
  "svc/user-service 8000:8000"
  "svc/order-service 8001:8001"
  "svc/inventory-service 8002:8002"
  "svc/prometheus 9090:9090"
  "svc/victoria-logs 9428:9428"
  "svc/jaeger 16686:16686"
  "svc/nats 4222:4222"
)

pids=()
stop() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap stop EXIT
trap 'exit 130' INT TERM

for forward in "${FORWARDS[@]}"; do
  read -r resource ports <<<"$forward"
  "$KUBECTL" -n "$NAMESPACE" port-forward "$resource" "$ports" &
  pids+=("$!")
done
wait -n
