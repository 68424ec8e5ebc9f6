"""The access engine: who may do what with which record (levels, privileges, the record-type
registry, shares, and the SQL of scope / readable / explain). It sits below ``org`` and reads
no directory table; ``org.directory`` loads the principals it evaluates."""
