package main

func cmdStart(g *globals, args []string) error {
	fs := newFlags("start")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	id, err := needID("start", pos, 0)
	if err != nil {
		return err
	}
	return g.runtime().Start(id)
}
