"""``ml-connector sim ifs`` (filled in by the IFS simulator)."""
