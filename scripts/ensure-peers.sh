#!/usr/bin/env bash
# Installs the real programs the tests talk to, from Debian's packages, when
# they are missing: promtool/prometheus, victoria-metrics, openssl, alertmanager. Each plugin's set-up script adds its
# own peers (Docker: scripts/ensure-docker.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
{ command -v promtool && command -v prometheus; } >/dev/null 2>&1 || need+=(prometheus)  # promtool check metrics; a real server scrapes outputs.prometheus
command -v victoria-metrics >/dev/null 2>&1 || need+=(victoria-metrics) # outputs.prometheus_remote_write tests
command -v openssl >/dev/null 2>&1 || need+=(openssl)                   # TLS test certificates
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager) # outputs.alerting end-to-end test
command -v chromium >/dev/null 2>&1 || need+=(chromium)               # /docs opened in a headless browser (puppeteer-core drives it)
# inputs.session_webhook runs the shipped Open WebUI filter (config/examples/*.py) with Python + pydantic
{ python3 -c 'import pydantic' || /usr/bin/python3 -c 'import pydantic'; } >/dev/null 2>&1 || need+=(python3 python3-pydantic)
# deploy/ tests: `docker-compose config` on the stack (amtool, from prometheus-alertmanager above, checks its Alertmanager file)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
if ((${#need[@]})); then
  echo "installing ${need[*]} from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if [[ -f scripts/ensure-docker.sh ]]; then bash scripts/ensure-docker.sh; fi
# The image test's base (debootstrap + this node; cached, quick once made)
if [[ -f scripts/ensure-node-image.sh ]]; then bash scripts/ensure-node-image.sh; fi
