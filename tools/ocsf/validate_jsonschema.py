"""Validate OCSF event JSON offline against OCSF 1.5.0 using PyPI ocsf-json-schema (which bundles the
schema.ocsf.io 1.5.0 export) + jsonschema (Draft 2020-12).
usage: python validate_jsonschema.py [--schema FILE] [--version 1.5.0] [--quiet] events.json [...]
A file may hold one event, a JSON array of events, or NDJSON. Profiles are taken from each event's
metadata.profiles (as the OCSF server validator does). Exit status 1 if any event has errors."""
import argparse
import json
import sys

from jsonschema import Draft202012Validator
from ocsf_events import load_events
from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--schema', help='compiled OCSF schema JSON (export/legacy layout); default: the bundled one')
    ap.add_argument('--version', default='1.5.0')
    ap.add_argument('--quiet', action='store_true', help='print only failing events, and a summary')
    ap.add_argument('files', nargs='+')
    a = ap.parse_args()
    raw = json.load(open(a.schema)) if a.schema else get_ocsf_schema(version=a.version)
    ocsf = OcsfJsonSchemaEmbedded(raw)
    bad = 0
    total = 0
    for path in a.files:
        events = load_events(path)
        for i, ev in enumerate(events):
            label = path if len(events) == 1 else f'{path}[{i}]'
            cls = ocsf.lookup_class_name_from_uid(class_uid=ev['class_uid'])
            profiles = (ev.get('metadata') or {}).get('profiles') or []
            schema = ocsf.get_class_schema(class_name=cls, profiles=profiles)
            errs = sorted(Draft202012Validator(schema).iter_errors(ev), key=lambda e: list(map(str, e.absolute_path)))
            for e in errs:
                print(f'{label}: {"/".join(map(str, e.absolute_path)) or "<root>"}: {e.message}')
            if errs or not a.quiet:
                print(f'{label}: class {cls} profiles={profiles}: {"OK" if not errs else f"{len(errs)} error(s)"}')
            total += 1
            bad += bool(errs)
    print(f'validate_jsonschema: {total} event(s), {bad} failing')
    sys.exit(1 if bad else 0)


if __name__ == '__main__':
    main()
