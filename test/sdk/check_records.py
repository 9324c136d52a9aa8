#!/usr/bin/env python3
"""Reads pg_streams' GetRecords pages the way boto3 does (test/t/012_sdk_compat.pl).

    python3 test/sdk/check_records.py PAGES.json EXPECTED.json

PAGES.json is a JSON array of streams.get_records() answers; EXPECTED.json maps
a record's key (dynamodb.Keys.id.N) to an object of attribute -> the value
PostgreSQL has (to_jsonb of the column), for the attributes whose values are
compared. Every page goes through botocore's own checks for the
dynamodbstreams GetRecords output (ParamValidator against the service model,
then the JSON response parser, which must drop nothing), and every Keys,
NewImage and OldImage through boto3's TypeDeserializer. Prints one line per
problem and "checked R records, V values" last; exits 1 on any problem.

One failure of TypeDeserializer is boto3's, not the record's: it raises
decimal.Rounded for an N written with more than 38 digits even when at most
38 are significant (1E+38 and beyond: "1" and 38 zeros), which is how
DynamoDB itself returns such numbers (boto3 issues 2500 and 4693). Those
attributes are noted ("boto3 limit: ...") and read with Decimal() instead.
"""
import decimal
import json
import re
import sys
from decimal import Decimal

import botocore.parsers
import botocore.session
import botocore.validate
from boto3.dynamodb.types import Binary, TypeDeserializer

problems = []


def problem(text):
    problems.append(text)
    print("problem: " + text)


def dropped(raw, parsed, where):
    """Fields of raw that the parser did not keep."""
    if isinstance(raw, dict):
        if not isinstance(parsed, dict):
            return [where]
        out = []
        for k, v in raw.items():
            if k not in parsed:
                out.append(f"{where}.{k}")
            else:
                out += dropped(v, parsed[k], f"{where}.{k}")
        return out
    if isinstance(raw, list):
        if not isinstance(parsed, list) or len(raw) != len(parsed):
            return [where]
        return [p for i, (a, b) in enumerate(zip(raw, parsed)) for p in dropped(a, b, f"{where}[{i}]")]
    return []


class LenientDeserializer(TypeDeserializer):
    """TypeDeserializer without the 38-character limit on N (boto3 PR 4699)."""

    def _deserialize_n(self, value):
        return Decimal(value)


def long_numbers(av):
    """The N texts in an attribute value that are integers written with more
    than 38 digits, as DynamoDB writes 1E+38 and beyond."""
    text = json.dumps(av)
    return [n for n in re.findall(r'"N": "([^"]*)"', text) if re.fullmatch(r"-?[1-9][0-9]{38,}", n)]


def same(got, want):
    """Whether a deserialized value is PostgreSQL's value (to_jsonb form)."""
    if want is None:
        return got is None
    if isinstance(want, bool):
        return got is want
    if isinstance(want, Decimal):
        # N -> Decimal; numbers DynamoDB cannot hold stay S with their text.
        try:
            return isinstance(got, (Decimal, str)) and Decimal(got) == want
        except ArithmeticError:
            return False
    if isinstance(want, str):
        if isinstance(got, Decimal):  # oid: a string in to_jsonb
            return Decimal(want) == got
        if isinstance(got, Binary):
            return want.startswith("\\x") and bytes(got).hex() == want[2:]
        return got == want
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(same(g, w) for g, w in zip(got, want))
    if isinstance(want, dict):
        return isinstance(got, dict) and got.keys() == want.keys() and all(same(got[k], want[k]) for k in want)
    return False


def main():
    pages = json.load(open(sys.argv[1]))
    expected = json.load(open(sys.argv[2]), parse_float=Decimal, parse_int=Decimal)
    model = botocore.session.get_session().get_service_model("dynamodbstreams")
    shape = model.operation_model("GetRecords").output_shape
    parser = botocore.parsers.create_parser(model.metadata["protocol"])
    validator = botocore.validate.ParamValidator()
    deserializer = TypeDeserializer()
    lenient = LenientDeserializer()
    records = values = 0
    for n, page in enumerate(pages):
        report = validator.validate(page, shape)
        if report.has_errors():
            problem(f"page {n}: not a GetRecords output: {report.generate_report()}")
        body = json.dumps(page).encode()
        parsed = parser.parse({"body": body, "headers": {}, "status_code": 200}, shape)
        parsed.pop("ResponseMetadata", None)
        for field in dropped(page, parsed, "page"):
            problem(f"page {n}: botocore's parser drops {field}")
        for rec in parsed.get("Records", []):
            records += 1
            ddb = rec["dynamodb"]
            key = ddb.get("Keys", {}).get("id", {}).get("N", "?")
            images = {}
            for part in ("Keys", "NewImage", "OldImage"):
                if part not in ddb:
                    continue
                images[part] = {}
                for attr, av in ddb[part].items():
                    try:
                        images[part][attr] = deserializer.deserialize(av)
                    except decimal.Rounded:
                        long = long_numbers(av)
                        if not long:
                            problem(f"record {key}: TypeDeserializer cannot read {part}.{attr}: decimal.Rounded")
                            continue
                        print(f"boto3 limit: record {key}: {part}.{attr} has {', '.join(n[:12] + '...' for n in long)}")
                        images[part][attr] = lenient.deserialize(av)
                    except Exception as e:  # any other error is a record boto3 cannot read
                        problem(f"record {key}: TypeDeserializer cannot read {part}.{attr}: {type(e).__name__}: {e}")
            want = expected.get(key, {})
            image = images.get("NewImage", {})
            for attr, value in want.items():
                values += 1
                if attr not in image:
                    problem(f"record {key}: {attr} missing")
                elif not same(image[attr], value):
                    problem(f"record {key}: {attr} is {image[attr]!r}, PostgreSQL has {value!r}")
    print(f"checked {records} records, {values} values")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
