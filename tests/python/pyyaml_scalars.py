"""Writes tests/data/yaml/pyyaml_scalars.json: how PyYAML 6 (yaml.safe_load, the reference's
loader) resolves each plain scalar spelling in SPELLINGS, for tests/config.rs to compare tada's
resolver against. Run with any Python that has PyYAML 6:

    python tests/python/pyyaml_scalars.py
"""

import json
import math
import pathlib

import yaml

SPELLINGS = [
    # booleans: only these families, in three spellings each
    "y", "Y", "n", "N", "x", "yes", "Yes", "YES", "yEs", "no", "No", "NO", "true", "True",
    "TRUE", "tRue", "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF",
    # null
    "~", "null", "Null", "NULL", "nULL", "none", "None",
    # integers
    "0", "7", "-7", "+7", "1_000", "010", "-010", "08", "0b101", "-0b1_01", "0x1F", "0x1f",
    "0o17", "1:30", "-1:30:05", "12345678901234567890", "00",
    # floats
    "1.", "1.5", "-1.5", "+.5", ".5", "1.0e-4", "1.0E+4", "1.0e4", "1e-4", "1E5", "1_0.5",
    "1:30.5", ".inf", "-.inf", "+.Inf", ".nan", ".NaN", "-.nan", "1.2.3", "0.",
    # strings that look like something
    "xy", "joint", "MoSIGenerator", "output/", "2024", "1e", "e5", "inf", "nan", "+",
    "0x", "0b", "1__0", "_1", "3.14abc", "12:60", "1:5:30",
]


def describe(value):
    if value is None:
        return {"type": "null"}
    if isinstance(value, bool):
        return {"type": "bool", "value": value}
    if isinstance(value, int):
        return {"type": "int", "value": str(value)}
    if isinstance(value, float):
        if math.isnan(value):
            return {"type": "float", "value": "nan"}
        if math.isinf(value):
            return {"type": "float", "value": "inf" if value > 0 else "-inf"}
        return {"type": "float", "value": repr(value)}
    return {"type": "str", "value": str(value)}


def main():
    table = []
    for s in SPELLINGS:
        value = yaml.safe_load("k: " + s)["k"]
        table.append({"yaml": s, "pyyaml": describe(value)})
    out = pathlib.Path(__file__).resolve().parents[1] / "data" / "yaml" / "pyyaml_scalars.json"
    out.write_text(json.dumps({"pyyaml": yaml.__version__, "table": table}, indent=1) + "\n")
    print(f"wrote {len(table)} spellings to {out}")


if __name__ == "__main__":
    main()
