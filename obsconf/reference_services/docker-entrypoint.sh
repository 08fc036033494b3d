#!/usr/bin/env bash
# Entry point of the reference-services image: `obsconf-service <service name>`.
#
# The service's output (stdout and stderr, as the local launcher captures it) goes both to the
# container's stdout, for `docker logs`, and to $OBSCONF_LOG_DIR/<service>.log, the file the
# log shipper tails (its stem becomes the resource attribute `service.name`). tee runs as root
# so the shared log volume's ownership never matters; the service itself runs unprivileged, and
# as PID 1, so `docker stop` (SIGTERM) reaches it directly and it flushes its spans on the way
# out.
set -euo pipefail

service="${1:-}"
case "$service" in
  user-service | order-service | inventory-service) ;;
  *)
    echo "usage: obsconf-service user-service|order-service|inventory-service (got '$service')" >&2
    exit 2
    ;;
esac

log_dir="${OBSCONF_LOG_DIR:-/var/log/obsconf}"
mkdir -p "$log_dir"
exec > >(tee -a "$log_dir/$service.log") 2>&1
exec setpriv --reuid=obsconf --regid=obsconf --clear-groups \
  python -m "reference_services.${service%-service}"
