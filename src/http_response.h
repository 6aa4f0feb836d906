/*
 * http_response.h - an incremental HTTP/1.1 response parser that does no I/O (the cosocket
 * transport of campaign.ngx feeds it what it reads, and reads only what it asks for):
 * status line, headers, then a body framed by Content-Length, chunked coding (extensions and
 * trailers) or the end of the connection; limits on the head's size and on the body.
 */
#ifndef CAMPAIGN_HTTP_RESPONSE_H
#define CAMPAIGN_HTTP_RESPONSE_H

#include "compat.h"

/* Sets m._http_response (the constructor: campaign._http_response{max_head =, max_body =,
 * head = bool}) on the module table at index m. */
void campaign_http_response_register(lua_State *L, int m);

#endif /* CAMPAIGN_HTTP_RESPONSE_H */
