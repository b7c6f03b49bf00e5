/* manifest: issuing signed manifests from the data directory's manifest key (ota/dsse.h). A
 * manifest is addressed to a device ("device:<id>"), a model ("model:<name>") or every device
 * ("all"); its body is the type's own fields plus what every manifest carries, set here: type,
 * device (the id, the model, or "*"), version (the next of its type, taken in the transaction that
 * records it), issued and expires. The running server delivers it (endpoint.c). */
#ifndef HEARTH_MANIFEST_H
#define HEARTH_MANIFEST_H

#include <stdint.h>

#include <jansson.h>

#include "common/herr.h"
#include "ota/dsse.h"
#include "server/datadir.h"

#define MANIFEST_DAYS_DEFAULT 30

struct manifest_issued {
	int64_t version, seq;
	char keyid[65];
};

/* Sign and record, audited as actor. fields: the type's own (an object, or NULL; it must not set
 * the common ones: HERR_INVALID). In its own transaction unless one is open (in_tx). */
enum herr manifest_issue(struct datadir *dd, const char *target, const char *type, const json_t *fields,
			 unsigned days, const char *actor, int in_tx, struct manifest_issued *out);

/* A DSSE signer over a key held by ca/key.h (the private key stays behind it), with its keyid. */
struct ca_key;
enum herr manifest_signer(struct ca_key *key, struct dsse_signer *out);

/* The same, signed by the manifest key and also by extra (a signing-key rotation's new key). */
enum herr manifest_issue_cosigned(struct datadir *dd, const char *target, const char *type,
				  const json_t *fields, unsigned days, const char *actor, int in_tx,
				  struct ca_key *extra, struct manifest_issued *out);

#endif
