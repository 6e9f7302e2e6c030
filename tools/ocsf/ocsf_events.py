"""Reading events for the OCSF validators: a file may hold one event, a JSON array of events,
or NDJSON (one event per line)."""
import json


def load_events(path):
    text = open(path).read()
    try:
        data = json.loads(text)
        return data if isinstance(data, list) else [data]
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]
