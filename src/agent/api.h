/* api.h - the agent's route table (see api.c and docs/agent-protocol.md). */
#ifndef STRATA_AGENT_API_H
#define STRATA_AGENT_API_H

#include "agent/agent.h"
#include "http/http_server.h"

/* The core routes and every module's (agent_modules[]).  Borrowed; the
 * opaque pointer handed to the server must be the agent. */
const struct http_route *agent_api_routes(void);

#endif
