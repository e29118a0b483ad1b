"""Data sources: Open-i XML reports, the Kaggle CSV re-packaging, DICOM metadata, fetching."""
