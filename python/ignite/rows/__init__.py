"""What the input readers (io/, images/) and the pipeline (pipeline/) both hold: windows of
records and the records' statuses. The bottom layer: it imports nothing else of ignite."""
