package main

func cmdDelete(g *globals, args []string) error {
	fs := newFlags("delete")
	force := false
	fs.BoolVar(&force, "force", false, "kill the container first if it is running")
	fs.BoolVar(&force, "f", false, "kill the container first if it is running")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	id, err := needID("delete", pos, 0)
	if err != nil {
		return err
	}
	return g.runtime().Delete(id, force)
}
