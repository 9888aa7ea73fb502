# Sourced by ./dev test: installs and starts the servers the test suite talks to.
# Each service exports the variables the tests read; a service that cannot be started
# leaves its variable unset and the tests that need it say why they skip (CI sets
# DASCT_REQUIRE_SERVICES=1 so that a missing service fails instead).
start_services() {
    :
}
