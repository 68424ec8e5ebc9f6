"""Lead capture: duplicate detection jobs and merge (SPEC B8); forms, pages and LinkedIn
intake as they arrive."""
