"""Data: the corpus type, file readers, label set, split, partition and what each node loads."""
