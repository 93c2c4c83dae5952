//! RecordBatch v2: the unit clients produce, the log stores and fetch returns.
