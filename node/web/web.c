/* web: finds an embedded page, script or style sheet by its URL path. The
 * table itself is generated from node/web/'s files by web.cmake; the HTTP
 * gateway (node/http*.c) calls web_asset_find for every GET that is no API
 * route. */
#include <assert.h>
#include <string.h>

#include "web_int.h"

/* The page served at "/". */
#define WEB_INDEX_PATH "/console"

const struct web_asset *web_asset_find(const char *path)
{
	size_t i;

	assert(path != NULL);
	if (strcmp(path, "/") == 0)
		path = WEB_INDEX_PATH;
	for (i = 0; i < web_assets_count; i++) {
		if (strcmp(web_assets[i].path, path) == 0)
			return &web_assets[i];
	}
	return NULL;
}
