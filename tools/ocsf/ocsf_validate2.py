#!/usr/bin/env python3
"""Offline OCSF event validator: a faithful Python port of the OCSF Server's event validator
("Validator2", the logic behind POST /api/v2/validate), from
github.com/ocsf/ocsf-server lib/schema/validator2.ex (commit 62e08aea, 2026-06-23).

It validates against a schema compiled by the official OCSF compiler (PyPI ocsf-schema-compiler,
default layout, the same JSON the OCSF Server v4 loads), e.g. compiled-official-1.5.0.json.

The schema may also be the export layout PyPI `ocsf-json-schema` bundles
(<site-packages>/ocsf_json_schema/ocsf/1.5.0.json); `.ci/run` uses that one, so nothing derived
from the OCSF schema repository is kept in this tree.

usage: ocsf_validate2.py --schema SCHEMA.json [--missing-recommended] [--json] [--quiet]
                         [--fail-on-warnings] event.json [...]
A file may hold one event, a JSON array of events, or NDJSON. Exit status 1 if any event has errors
(or, with --fail-on-warnings, warnings). Standard library only (Python >= 3.9).
"""
import argparse
import json
import re
import sys

from ocsf_events import load_events

MIN_INT, MAX_INT = -(2 ** 63), 2 ** 63 - 1
MIN_LONG, MAX_LONG = -(2 ** 127), 2 ** 127 - 1


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def is_integer_t(v):
    return is_int(v) and MIN_INT <= v <= MAX_INT


def is_long_t(v):
    return is_int(v) and MIN_LONG <= v <= MAX_LONG


def ex_to_string(v):
    """Elixir Kernel.to_string/1 for JSON scalars (enum keys are compared as strings)."""
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)
    return str(v)


def type_of(v):
    if isinstance(v, float):
        return "float_t"
    if isinstance(v, bool):
        return "boolean_t"
    if is_int(v):
        return "integer_t" if is_integer_t(v) else ("long_t" if is_long_t(v) else "big integer")
    if isinstance(v, str):
        return "string_t"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    if v is None:
        return "null"
    return "unknown type"


def path(parent, name):
    return name if parent is None else f"{parent}.{name}"


def parse_version(v):
    m = re.match(r"^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?", v or "")
    if not m:
        return None
    return (int(m[1]), int(m[2]), int(m[3]), m[4])


def normalize(schema):
    """Accept the default layout of ocsf-schema-compiler (what the OCSF Server v4 loads) or the
    legacy/export layout (ocsf-schema-compiler -l, schema.ocsf.io/<v>/export/schema, and the copies
    bundled in PyPI ocsf-json-schema). The latter marks a profile attribute with "profile": "name"."""
    if "dictionary" in schema:
        return schema
    profs = set()
    for group in ("classes", "objects"):
        for item in schema[group].values():
            for a in item.get("attributes", {}).values():
                if a.get("profile"):
                    a["profiles"] = [a["profile"]]
                    profs.add(a["profile"])
    return dict(schema, dictionary={"types": {"attributes": schema["types"]}},
                profiles={p: {} for p in profs})


class Validator:
    def __init__(self, schema, warn_on_missing_recommended=False):
        schema = normalize(schema)
        self.s = schema
        self.types = schema["dictionary"]["types"]["attributes"]
        self.warn_rec = warn_on_missing_recommended
        self.classes_by_uid = {c["uid"]: c for c in schema["classes"].values()}

    # ---- response helpers
    def err(self, t, msg, **extra):
        self.errors.append(dict(error=t, message=msg, **extra))

    def warn(self, t, msg, **extra):
        self.warnings.append(dict(warning=t, message=msg, **extra))

    # ---- entry point
    def validate(self, event):
        self.errors, self.warnings = [], []
        if not isinstance(event, dict):
            self.err("wrong_type", f"Event has wrong type; expected object, got {type_of(event)}.")
            return self.result()
        if "class_uid" not in event:
            self.err("attribute_required_missing", 'Required attribute "class_uid" is missing.', attribute_path="class_uid")
            return self.result()
        cu = event["class_uid"]
        if not is_integer_t(cu):
            self.err("attribute_wrong_type", f'Attribute "class_uid" value has wrong type; expected integer_t, got {type_of(cu)}.', attribute_path="class_uid")
            return self.result()
        cls = self.classes_by_uid.get(cu)
        if cls is None:
            self.err("class_uid_unknown", f'Unknown "class_uid" value; no class is defined for {cu}.', attribute_path="class_uid")
            return self.result()
        profiles = self.profiles_of(event)
        if cls.get("@deprecated"):
            self.warn("class_deprecated", f'Class "{cls["name"]}" is deprecated.')
        self.validate_attributes(event, None, cls, profiles)
        self.validate_version(event)
        self.validate_type_uid(event)
        self.validate_constraints(event, cls, None)
        self.validate_observables(event, cls, profiles)
        return self.result()

    def result(self):
        return dict(error_count=len(self.errors), warning_count=len(self.warnings), errors=self.errors, warnings=self.warnings)

    def profiles_of(self, event):
        md = event.get("metadata")
        if not isinstance(md, dict):
            return None
        profs = md.get("profiles")
        if isinstance(profs, list):
            for i, p in enumerate(profs):
                if isinstance(p, str) and p not in self.s["profiles"]:
                    self.err("profile_unknown", f'Unknown profile at "metadata.profiles[{i}]"; no profile is defined for "{p}".', attribute_path=f"metadata.profiles[{i}]")
            return profs
        return None

    @staticmethod
    def filter_with_profiles(attributes, profiles):
        ps = set(profiles or [])
        return {k: v for k, v in attributes.items() if not v.get("profiles") or any(p in ps for p in v["profiles"])}

    # ---- attributes
    def validate_attributes(self, item, parent, schema_item, profiles):
        attrs = self.filter_with_profiles(schema_item.get("attributes", {}), profiles)
        for name, d in attrs.items():
            self.validate_attribute(item.get(name), path(parent, name), name, d, profiles)
        if attrs:  # an object with no attributes ("object", used by unmapped) accepts anything
            for key in item:
                if key not in attrs:
                    where = f'class "{schema_item["name"]}" uid {schema_item["uid"]}' if "uid" in schema_item and parent is None else f'object "{schema_item["name"]}"'
                    self.err("attribute_unknown", f'Unknown attribute at "{path(parent, key)}"; attribute "{key}" is not defined in {where}.', attribute_path=path(parent, key))
        for name, d in attrs.items():
            if "enum" in d and name in item:
                self.validate_enum(item, parent, name, d)

    def validate_attribute(self, value, apath, name, d, profiles):
        if value is None:  # missing or JSON null are treated alike
            req = d.get("requirement")
            if req == "required":
                self.err("attribute_required_missing", f'Required attribute "{apath}" is missing.', attribute_path=apath)
            elif req == "recommended" and self.warn_rec:
                self.warn("attribute_recommended_missing", f'Recommended attribute "{apath}" is missing.', attribute_path=apath)
            return
        if d.get("@deprecated"):
            self.warn("attribute_deprecated", f'Attribute "{apath}" is deprecated. {d["@deprecated"].get("message", "")}', attribute_path=apath)
        t = d["type"]
        if t != "object_t" and t not in self.types:
            self.err("schema_bug_type_missing", f'SCHEMA BUG: Type "{t}" is not defined in dictionary.', attribute_path=apath)
            return
        if d.get("is_array"):
            if not isinstance(value, list):
                self.wrong_type(apath, value, f"array of {t}")
                return
            for i, el in enumerate(value):
                self.validate_value(el, f"{apath}[{i}]", name, d, profiles)
        else:
            self.validate_value(value, apath, name, d, profiles)

    def wrong_type(self, apath, value, expected):
        self.err("attribute_wrong_type", f'Attribute "{apath}" value has wrong type; expected {expected}, got {type_of(value)}.', attribute_path=apath, value=value)

    def validate_value(self, value, apath, name, d, profiles):
        if d["type"] == "object_t":
            obj = self.s["objects"][d["object_type"]]
            if not isinstance(value, dict):
                self.wrong_type(apath, value, f'{d["object_type"]} (object)')
                return
            if obj.get("@deprecated"):
                self.warn("object_deprecated", f'Attribute "{apath}" uses deprecated object "{obj["name"]}".', attribute_path=apath)
            self.validate_attributes(value, apath, obj, profiles)
            self.validate_constraints(value, obj, apath)
            return
        tname = d["type"]
        td = self.types[tname]
        prim = td.get("type", tname)
        ok = {
            "boolean_t": lambda v: isinstance(v, bool),
            "float_t": lambda v: isinstance(v, float),
            "integer_t": is_integer_t,
            "long_t": is_long_t,
            "string_t": lambda v: isinstance(v, str),
            "json_t": lambda v: True,
        }.get(prim)
        if ok is None:
            self.err("schema_bug_primitive_type_unknown", f'SCHEMA BUG: Unknown primitive type "{prim}".', attribute_path=apath)
            return
        if not ok(value):
            self.wrong_type(apath, value, tname + (f" ({prim})" if prim != tname else ""))
            return
        sup = self.types.get(prim, {}) if prim != tname else {}
        if prim in ("integer_t", "long_t", "float_t"):
            rng = td.get("range") or sup.get("range")
            if rng and not (rng[0] <= value <= rng[1]):
                self.err("attribute_value_exceeds_range", f'Attribute "{apath}" value is outside type "{tname}" range of {rng[0]} to {rng[1]}.', attribute_path=apath, value=value)
        if prim == "string_t":
            ml = td.get("max_len") or sup.get("max_len")
            if ml and len(value) > ml:
                self.err("attribute_value_exceeds_max_len", f'Attribute "{apath}" value length of {len(value)} exceeds type "{tname}" max length {ml}.', attribute_path=apath, value=value)
            rx = td.get("regex") or sup.get("regex")
            if rx:
                try:
                    if not re.search(rx, value):
                        self.warn("attribute_value_regex_not_matched", f'Attribute "{apath}" value does not match regex of type "{tname}".', attribute_path=apath, value=value)
                except re.error as e:
                    self.err("schema_bug_type_regex_invalid", f'SCHEMA BUG: Type "{tname}" specifies an invalid regex: {e}', attribute_path=apath)
        vals = td.get("values") if "values" in td else sup.get("values")
        if vals is not None and value not in vals:
            self.err("attribute_value_not_in_type_values", f'Attribute "{apath}" value is not in type "{tname}" list of allowed values.', attribute_path=apath, value=value)

    # ---- enums
    def validate_enum(self, item, parent, name, d):
        enum, sib = d["enum"], d.get("sibling")
        apath = path(parent, name)
        if d.get("is_array"):
            vals = item[name] if isinstance(item[name], list) else []
            for i, v in enumerate(vals):
                k = ex_to_string(v)
                if k not in enum:
                    self.err("attribute_enum_array_value_unknown", f'Unknown enum array value at "{apath}[{i}]"; value {v!r} is not defined for enum "{name}".', attribute_path=f"{apath}[{i}]", value=v)
                    continue
                if v != 99 and sib and sib in item:
                    sv = item[sib][i] if isinstance(item[sib], list) and i < len(item[sib]) else None
                    if sv is None:
                        self.err("attribute_enum_array_sibling_missing", f'Attribute "{path(parent, sib)}[{i}]" enum array sibling value is missing.', attribute_path=f"{path(parent, sib)}[{i}]")
                    elif sv != enum[k].get("caption"):
                        self.err("attribute_enum_array_sibling_incorrect", f'Attribute "{path(parent, sib)}[{i}]" enum array sibling value {sv!r} is incorrect; expected {enum[k].get("caption")!r}.', attribute_path=f"{path(parent, sib)}[{i}]")
                if enum[k].get("@deprecated"):
                    self.warn("attribute_enum_array_value_deprecated", f'Deprecated enum array value at "{apath}[{i}]"; value {v!r} is deprecated.', attribute_path=f"{apath}[{i}]")
            return
        v = item[name]
        k = ex_to_string(v)
        if k not in enum:
            self.err("attribute_enum_value_unknown", f'Unknown enum value at "{apath}"; value {v!r} is not defined for enum "{name}".', attribute_path=apath, value=v)
            return
        if sib and sib in item:
            cap, sv = enum[k].get("caption"), item[sib]
            if v == 99:
                if cap == sv:
                    self.warn("attribute_enum_sibling_suspicious_other", f'Attribute "{path(parent, sib)}" enum sibling value {sv!r} suspiciously matches the caption of enum "{apath}" value 99 ({cap!r}).', attribute_path=path(parent, sib))
            elif cap != sv:
                self.warn("attribute_enum_sibling_incorrect", f'Attribute "{path(parent, sib)}" enum sibling value {sv!r} does not match the caption of enum "{apath}" value {v!r}; expected {cap!r}.', attribute_path=path(parent, sib))
        if enum[k].get("@deprecated"):
            self.warn("attribute_enum_value_deprecated", f'Deprecated enum value at "{apath}"; value {v!r} is deprecated.', attribute_path=apath)

    # ---- event-level checks
    def validate_version(self, event):
        md = event.get("metadata")
        if not (isinstance(md, dict) and isinstance(md.get("version"), str)):
            return
        ev, sv = parse_version(md["version"]), parse_version(self.s["version"])
        if ev is None or sv is None:
            self.err("version_invalid", f'Event version "{md["version"]}" at "metadata.version" is not a valid version.', attribute_path="metadata.version")
            return
        if ev == sv:
            return
        if ev[:3] < sv[:3] or (ev[:3] == sv[:3] and ev[3] is not None and sv[3] is None):
            if ev[0] == 0:
                self.err("version_incompatible_initial_development", f'Event version "{md["version"]}" is an initial development version.', attribute_path="metadata.version")
            elif ev[3] is not None:
                self.err("version_incompatible_prerelease", f'Event version "{md["version"]}" is a prerelease version.', attribute_path="metadata.version")
            else:
                self.warn("version_earlier", f'Event version "{md["version"]}" at "metadata.version" is earlier than schema version "{self.s["version"]}".', attribute_path="metadata.version")
        else:
            self.err("version_incompatible_later", f'Event version "{md["version"]}" at "metadata.version" is later than schema version "{self.s["version"]}".', attribute_path="metadata.version")

    def validate_type_uid(self, event):
        c, a, t = event.get("class_uid"), event.get("activity_id"), event.get("type_uid")
        if is_int(c) and is_int(a) and is_int(t) and t != c * 100 + a:
            self.err("type_uid_incorrect", f'Event\'s "type_uid" value of {t} does not match expected value of {c * 100 + a} (class_uid {c} * 100 + activity_id {a}).', attribute_path="type_uid")

    def validate_constraints(self, item, schema_item, apath):
        where = f'object "{schema_item["name"]}" at "{apath}"' if apath else f'class "{schema_item["name"]}" uid {schema_item.get("uid")}'
        for kind, keys in (schema_item.get("constraints") or {}).items():
            n = sum(1 for k in keys if k in item)
            if kind == "at_least_one":
                if n == 0:
                    self.err("constraint_failed", f'Constraint failed: "at_least_one" {keys} from {where}; expected at least one constraint attribute, but got none.', attribute_path=apath)
            elif kind == "just_one":
                if n != 1:
                    self.err("constraint_failed", f'Constraint failed: "just_one" {keys} from {where}; expected exactly 1 constraint attribute, got {n}.', attribute_path=apath)
            else:
                self.err("constraint_unknown", f"SCHEMA BUG: Unknown constraint {kind}.")

    def validate_observables(self, event, cls, profiles):
        obs = event.get("observables")
        if not isinstance(obs, list):
            return
        for i, o in enumerate(obs):
            if not (isinstance(o, dict) and isinstance(o.get("name"), str)):
                continue
            parts = re.split(r"\.(?![^\[]*\])", o["name"])
            if not self.ref_ok(parts, cls, profiles):
                self.err("observable_name_invalid_reference", f'Observable index {i} "name" value "{o["name"]}" does not refer to an attribute defined in class "{cls["name"]}" uid {cls["uid"]}.', attribute_path=f"observables[{i}].name")

    def ref_ok(self, parts, item, profiles):
        key, rest = parts[0], parts[1:]
        m = re.match(r"^([^[]+)\[.*\]$", key)
        base, is_arr = (m[1], True) if m else (key, False)
        attrs = self.filter_with_profiles(item.get("attributes", {}), profiles)
        d = attrs.get(base)
        if d is None:
            return False
        if not rest:
            return True
        if is_arr and not d.get("is_array"):
            return False
        if d.get("type") != "object_t":
            return False
        return self.ref_ok(rest, self.s["objects"][d["object_type"]], profiles)



def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--schema", required=True, help="compiled OCSF schema (default or export layout)")
    ap.add_argument("--missing-recommended", action="store_true", help="warn on missing recommended attributes")
    ap.add_argument("--json", action="store_true", help="print full JSON results")
    ap.add_argument("--quiet", action="store_true", help="print only events with findings, and a summary")
    ap.add_argument("--fail-on-warnings", action="store_true", help="exit 1 on warnings too")
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    v = Validator(json.load(open(a.schema)), a.missing_recommended)
    bad = 0
    total = 0
    for f in a.files:
        events = load_events(f)
        for i, ev in enumerate(events):
            r = v.validate(ev)
            label = f if len(events) == 1 else f"{f}[{i}]"
            if a.json:
                print(json.dumps({"file": label, **r}, default=str))
            else:
                for e in r["errors"]:
                    print(f"{label}: ERROR {e['error']}: {e['message']}")
                for w in r["warnings"]:
                    print(f"{label}: warning {w['warning']}: {w['message']}")
                if not a.quiet or r["error_count"] or r["warning_count"]:
                    print(f"{label}: {r['error_count']} error(s), {r['warning_count']} warning(s)")
            total += 1
            bad += r["error_count"] > 0 or (a.fail_on_warnings and r["warning_count"] > 0)
    print(f"ocsf_validate2: {total} event(s), {bad} failing")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
