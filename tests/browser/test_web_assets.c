/* The web console's files embedded in cairnd (node/web/web.cmake, web.c):
 * every page, script and style sheet in node/web/ is in the table at its
 * URL path with its exact bytes and a content type, "/" is the console,
 * and anything else is not found. Built from the same web.cmake step as
 * cairnd, on the files of this source tree (CAIRN_WEB_DIR). */
#include <dirent.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "web.h"
#include "web_int.h"

/* Reads the file @name of node/web/ into memory; *@len gets its size. */
static unsigned char *read_web_file(const char *name, size_t *len)
{
	char path[4096];
	unsigned char *buf;
	FILE *f;
	long size;

	snprintf(path, sizeof path, "%s/%s", CAIRN_WEB_DIR, name);
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	size = ftell(f);
	assert_true(size >= 0);
	assert_int_equal(fseek(f, 0, SEEK_SET), 0);
	buf = malloc((size_t)size + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
	fclose(f);
	*len = (size_t)size;
	return buf;
}

static bool ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), m = strlen(tail);

	return n >= m && strcmp(s + n - m, tail) == 0;
}

static void root_and_console_are_the_console_page(void **state)
{
	const struct web_asset *root = web_asset_find("/");
	const struct web_asset *console = web_asset_find("/console");

	(void)state;
	assert_non_null(root);
	assert_ptr_equal(root, console);
	assert_string_equal(root->path, "/console");
	assert_string_equal(root->content_type, "text/html; charset=utf-8");
	assert_non_null(
		strstr((const char *)root->data, "<title>Cairn console"));
	assert_non_null(strstr((const char *)root->data, "/console.js"));
	assert_non_null(strstr((const char *)root->data, "href=\"/canvas\""));
}

static void pages_scripts_and_styles_have_their_content_types(void **state)
{
	static const struct {
		const char *path;
		const char *type;
	} want[] = {
		{ "/canvas", "text/html; charset=utf-8" },
		{ "/canvas.js", "text/javascript; charset=utf-8" },
		{ "/console.js", "text/javascript; charset=utf-8" },
		{ "/common.js", "text/javascript; charset=utf-8" },
		{ "/style.css", "text/css; charset=utf-8" },
		{ "/favicon.svg", "image/svg+xml" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof want / sizeof want[0]; i++) {
		const struct web_asset *a = web_asset_find(want[i].path);

		assert_non_null(a);
		assert_string_equal(a->path, want[i].path);
		assert_string_equal(a->content_type, want[i].type);
		assert_true(a->len > 0);
	}
	assert_non_null(strstr((const char *)web_asset_find("/canvas")->data,
			       "/canvas.js"));
}

/* Every web file of the source tree is embedded byte for byte, and the
 * table holds nothing else. */
static void every_web_file_is_embedded_byte_for_byte(void **state)
{
	DIR *d = opendir(CAIRN_WEB_DIR);
	struct dirent *e;
	size_t files = 0;

	(void)state;
	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		char url[512];
		const struct web_asset *a;
		unsigned char *bytes;
		size_t len;

		if (!ends_with(e->d_name, ".html") &&
		    !ends_with(e->d_name, ".js") &&
		    !ends_with(e->d_name, ".css") &&
		    !ends_with(e->d_name, ".svg"))
			continue;
		if (ends_with(e->d_name, ".html"))
			snprintf(url, sizeof url, "/%.*s",
				 (int)(strlen(e->d_name) - 5), e->d_name);
		else
			snprintf(url, sizeof url, "/%s", e->d_name);
		a = web_asset_find(url);
		assert_non_null(a);
		bytes = read_web_file(e->d_name, &len);
		assert_int_equal(a->len, len);
		assert_memory_equal(a->data, bytes, len);
		/* One NUL past the end: a text asset is a C string too. */
		assert_int_equal(a->data[len], 0);
		free(bytes);
		files++;
	}
	closedir(d);
	assert_true(files >= 6);
	assert_int_equal(web_assets_count, files);
}

static void other_paths_are_not_found(void **state)
{
	static const char *const paths[] = {
		"",           "/nope",         "/console.html", "/consol",
		"/consoles",  "/canvas/",      "/CONSOLE",      "/web.c",
		"/web.h",     "/web.cmake",    "//console",     "/./console",
		"/console?x", "/../web/web.c", "console",       "/index.html",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof paths / sizeof paths[0]; i++)
		assert_null(web_asset_find(paths[i]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(root_and_console_are_the_console_page),
		cmocka_unit_test(
			pages_scripts_and_styles_have_their_content_types),
		cmocka_unit_test(every_web_file_is_embedded_byte_for_byte),
		cmocka_unit_test(other_paths_are_not_found),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
