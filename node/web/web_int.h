/* web: what web.c shares with the table web.cmake generates at build time
 * (web_assets.c in the build directory). Nothing else includes this. */
#ifndef CAIRN_NODE_WEB_INT_H
#define CAIRN_NODE_WEB_INT_H

#include <stddef.h>

#include "web.h"

/* Every embedded file, sorted by path. A file "name.html" is served at
 * "/name", any other file at "/" followed by its file name. Each data array
 * holds one NUL byte past len, so text assets are also C strings. */
extern const struct web_asset web_assets[];

/* How many entries web_assets has. */
extern const size_t web_assets_count;

#endif /* CAIRN_NODE_WEB_INT_H */
