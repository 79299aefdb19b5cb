"""`threadrec demo`: the whole pipeline on one machine, with a report."""
