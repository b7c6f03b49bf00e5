/* sensitive: the built-in catalogue of presence-revealing telemetry fields (DESIGN.md "Data
 * minimization"). A field name is normalised (case, separators, unit suffixes, \u escapes already
 * decoded by the JSON parser) and matched against families: motion, occupancy/presence, PIR,
 * door/window/contact, CO2/VOC/air quality, sound/noise, light/lux, fine-grained power/current,
 * RSSI and Wi-Fi/BLE scans, MAC addresses/SSIDs/BSSIDs, location, and modes that follow presence
 * (away/eco/holiday/preset/occupancy). Pure functions; docs/minimization.md lists the families. */
#ifndef HEARTH_SENSITIVE_H
#define HEARTH_SENSITIVE_H

#include <stddef.h>

enum sensitive_family {
	SENSITIVE_NONE = 0,
	SENSITIVE_MOTION, SENSITIVE_OCCUPANCY, SENSITIVE_CONTACT, SENSITIVE_AIR_QUALITY,
	SENSITIVE_SOUND, SENSITIVE_LIGHT, SENSITIVE_POWER, SENSITIVE_RADIO, SENSITIVE_NETWORK_ID,
	SENSITIVE_LOCATION, SENSITIVE_PRESENCE_MODE,
};

/* Longest normalised name kept; longer names are cut (and still matched on what remains). */
#define SENSITIVE_NAME_MAX 128

/* Lower-case ASCII letters and digits only, unit and qualifier suffixes (_ppm, _db, _dba, _lux, _w,
 * _kw, _mw, _a, _ma, _dbm, _level, _detected, ...; the list is in sensitive.c and
 * docs/minimization.md) removed: "CO2_ppm" -> "co2", "Motion-Detected" -> "motion".
 * Returns the length written (out is NUL-terminated). */
size_t sensitive_normalise(const char *name, size_t len, char out[SENSITIVE_NAME_MAX]);

/* The family a field name (raw, any case) belongs to, or SENSITIVE_NONE. */
enum sensitive_family sensitive_classify(const char *name, size_t len);

/* A short name of the family ("motion", "air quality", ...), for messages. */
const char *sensitive_family_name(enum sensitive_family f);

#endif
