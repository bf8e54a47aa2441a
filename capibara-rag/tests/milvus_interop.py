"""What another Milvus client sees of a collection written by capibara's MilvusStore, and writes to it.

Run by tests/vector_milvus.rs with the pymilvus of scripts/ensure-milvus:
    python milvus_interop.py URL COLLECTION FOREIGN_COLLECTION IDS_JSON QUERY_JSON
It prints one JSON object: the rows of IDS as pymilvus reads them, the hits of a top-3 inner-product
search for QUERY, and it writes the record `from-pymilvus` into COLLECTION and creates
FOREIGN_COLLECTION with the field layout and L2 metric of the original Capibara6 deployment.
"""

import json
import sys

from pymilvus import DataType, MilvusClient


def main() -> None:
    url, collection, foreign, ids, query = sys.argv[1:6]
    ids = json.loads(ids)
    query = json.loads(query)
    client = MilvusClient(uri=url)
    rows = client.query(
        collection,
        filter="id in " + json.dumps(ids),
        output_fields=["id", "text", "metadata", "timestamp", "vector"],
        consistency_level="Strong",
    )
    hits = client.search(
        collection,
        data=[query],
        anns_field="vector",
        limit=3,
        search_params={"metric_type": "IP", "params": {"ef": 64}},
        output_fields=["id"],
        consistency_level="Strong",
    )[0]
    client.insert(
        collection,
        [
            {
                "id": "from-pymilvus",
                "text": "escrito por pymilvus",
                "metadata": {"lang": "es", "source": "pymilvus"},
                "timestamp": 1_700_000_000_000,
                "vector": [0.5] * len(query),
            }
        ],
    )
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("text", DataType.VARCHAR, max_length=1024)
    schema.add_field("metadata", DataType.JSON)
    schema.add_field("timestamp", DataType.INT64)
    schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=len(query))
    index = client.prepare_index_params()
    index.add_index(field_name="embedding", index_type="FLAT", metric_type="L2")
    client.create_collection(foreign, schema=schema, index_params=index)
    print(
        json.dumps(
            {
                "rows": [
                    {
                        "id": row["id"],
                        "text": row["text"],
                        "metadata": row["metadata"],
                        "timestamp": row["timestamp"],
                        "vector": [float(v) for v in row["vector"]],
                    }
                    for row in rows
                ],
                "hits": [{"id": hit["id"], "score": hit["distance"]} for hit in hits],
            }
        )
    )


if __name__ == "__main__":
    main()
