"""The model as a dataflow graph: recorded from a forward pass, collapsed by module groups, laid out in layers."""
