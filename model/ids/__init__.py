"""The hybrid's ID half: the SASRec tower, the fusion gate, online row steps, its checkpoint loader."""
