"""Run `dens-calc train` with AdamW's eps replaced (argv[1]); the rest of argv goes to the CLI."""
import functools, sys, torch
eps = float(sys.argv.pop(1))
torch.optim.AdamW = functools.partial(torch.optim.AdamW, eps=eps)
torch.optim.Adam = functools.partial(torch.optim.Adam, eps=eps)
from cli.main import main
sys.argv[0] = "dens-calc"
main()
