/* Raw access to the store's column families, for tests and tools that must
 * reach beneath the data model: corrupting a record to prove the checksum
 * catches it, inspecting a key layout. Never used by the node. */
#ifndef CAIRN_STORAGE_STORE_DEBUG_H
#define CAIRN_STORAGE_STORE_DEBUG_H

#include <stddef.h>

#include "store.h"

/* Writes @val under @key in the one column family named by @cf (a
 * STORE_CF_* bit), bypassing every check. Returns 0 or STORE_EIO. */
int store_debug_put(struct store *s, unsigned cf, const void *key,
		    size_t key_len, const void *val, size_t val_len);

/* Reads the value under @key in column family @cf into a malloc'd buffer
 * that the caller frees. Sets *val to NULL when the key is absent. Returns
 * 0, STORE_ENOMEM or STORE_EIO. */
int store_debug_get(struct store *s, unsigned cf, const void *key,
		    size_t key_len, void **val, size_t *val_len);

/* Deletes @key from column family @cf. Returns 0 or STORE_EIO. */
int store_debug_delete(struct store *s, unsigned cf, const void *key,
		       size_t key_len);

#endif /* CAIRN_STORAGE_STORE_DEBUG_H */
