"""The `tanglepay` program: the command line (`tanglepay node|coordinator|wallet|devnet`) and the
local devnet. The top of the tree: it may import every package, and nothing imports it.
"""
