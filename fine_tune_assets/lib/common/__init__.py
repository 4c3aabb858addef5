"""What every domain uses: data paths and the package root, content hashing, JSONL and Parquet I/O,
Markdown/HTML rendering and number formats, installed package versions."""
