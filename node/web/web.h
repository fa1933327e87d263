/* web: the static files of the web console and the canvas demo, embedded in
 * the cairnd binary at build time (web.cmake turns node/web/'s .html, .js,
 * .css and .svg files into a table), so a node serves its pages with no
 * files on disk. The HTTP gateway looks a request's path up here.
 *
 * Everything here is constant data: safe from any thread, nothing to free. */
#ifndef CAIRN_NODE_WEB_H
#define CAIRN_NODE_WEB_H

#include <stddef.h>

struct web_asset {
	const char *path;          /* "/console", "/canvas", "/app.js", ... */
	const char *content_type;  /* "text/html; charset=utf-8", ... */
	const unsigned char *data; /* the file's bytes */
	size_t len;                /* bytes in data; data[len] is a NUL */
};

/* The asset served at @path (exact match; "/" is the console), or NULL. */
const struct web_asset *web_asset_find(const char *path);

#endif /* CAIRN_NODE_WEB_H */
