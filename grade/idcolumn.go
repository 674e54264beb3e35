package grade

import "github.com/deploylab/deploylab/gradebook"

// IDColumn chooses the gradebook CSV's identifying column: the setting
// ("email" or "idnumber") when given; else email when every student has
// one; else the ID number when every student has one; else email (the
// writer then names who lacks one).
func IDColumn(setting string, ts []Target) gradebook.IDColumn {
	switch setting {
	case "email":
		return gradebook.ByEmail
	case "idnumber":
		return gradebook.ByIDNumber
	}
	for _, t := range ts {
		if t.Student.Email == "" {
			for _, t := range ts {
				if t.Student.ID == "" {
					return gradebook.ByEmail // let the writer name who lacks one
				}
			}
			return gradebook.ByIDNumber
		}
	}
	return gradebook.ByEmail
}
