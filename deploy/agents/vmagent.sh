#!/bin/sh
# vmagent (VictoriaMetrics' agent, Debian package `victoria-metrics`) scraping the targets in
# $VMAGENT_SCRAPE and remote-writing to Tributary with a token.
# tests/e2e/agents.rs runs this script for real (the variables set to the test's) and queries
# the scraped samples back.
#   TRIBUTARY_URL    base URL of Tributary's HTTP listener (default http://tributary.example:9201)
#   TRIBUTARY_TOKEN  a token whose write scope names this cluster (README "Authentication")
#   VMAGENT_SCRAPE   the scrape config (Prometheus's scrape_configs format)
#   VMAGENT_DATA     where vmagent buffers unsent data while Tributary is away
#   VMAGENT_LISTEN   vmagent's own HTTP address
set -eu
exec vmagent \
  -promscrape.config="${VMAGENT_SCRAPE:-/etc/vmagent/scrape.yml}" \
  -remoteWrite.url="${TRIBUTARY_URL:-http://tributary.example:9201}/api/v1/write" \
  -remoteWrite.bearerToken="${TRIBUTARY_TOKEN:?set TRIBUTARY_TOKEN}" \
  -remoteWrite.tmpDataPath="${VMAGENT_DATA:-/var/lib/vmagent}" \
  -remoteWrite.flushInterval=1s \
  -httpListenAddr="${VMAGENT_LISTEN:-:8429}" \
  "$@"
