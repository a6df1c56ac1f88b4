package runreport_test

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/secondorder/prune/internal/runreport"
)

// A removal as report.json lists it: values that do not apply are null.
func Example() {
	s := runreport.Step{Step: 1, Round: 1, Index: 4, Name: "W0[1][0]", Saliency: 0.25, Predicted: 0.25,
		Real: runreport.Num(math.NaN()), Loss: 3.5, Error: 0, Live: 57}
	b, _ := json.Marshal(s)
	fmt.Println(string(b))
	csv, _ := runreport.CSV([]runreport.Step{s})
	fmt.Print(string(csv))
	// Output:
	// {"step":1,"round":1,"index":4,"name":"W0[1][0]","saliency":0.25,"predicted_dE":0.25,"real_dE":null,"loss":3.5,"error":0,"live":57,"undone":false}
	// step,round,index,name,saliency,predicted_dE,real_dE,loss,error,live,undone
	// 1,1,4,W0[1][0],0.25,0.25,,3.5,0,57,false
}
